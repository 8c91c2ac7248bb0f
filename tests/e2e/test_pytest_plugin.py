"""The user's test kit (pytest plugin `lwm2m_testbed`, loaded here through its entry point): the
example project's tests under pytest-xdist with two workers, the README's three-line minimal
test verbatim, and the parallel-safety rules (distinct carrier addresses per cloud, per-worker
address blocks, unique IMEIs)."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path as FsPath

import pytest

from testbed.testkit import PrivateCloud
from testbed.testkit.addresses import candidate_addresses, worker_index
from testbed.testkit.module import AtCommandError, ModuleFactory, luhn_digit, make_imei

ROOT = FsPath(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "thermometer"


def test_module_registers_with_the_private_cloud(module):
    module.login()
    module.expect(r"\+MIPLEVENT: 0,6", timeout=10)


def test_readme_shows_the_minimal_test_that_the_suite_runs() -> None:
    source = inspect.getsource(test_module_registers_with_the_private_cloud)
    assert source in (ROOT / "examples" / "README.md").read_text()
    assert source in (EXAMPLE / "tests" / "test_minimal.py").read_text()


def test_example_project_passes_under_xdist_with_two_workers() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b8 passed\b", result.stdout), result.stdout[-1500:]
    assert "[gw0]" in result.stdout and "[gw1]" in result.stdout


def test_two_clouds_in_one_process_listen_on_distinct_addresses_and_keep_their_modules(
    tmp_path: FsPath,
) -> None:
    with (
        PrivateCloud(f"sqlite+aiosqlite:///{tmp_path}/a.db", http=False) as first,
        PrivateCloud(f"sqlite+aiosqlite:///{tmp_path}/b.db", http=False) as second,
    ):
        assert not set(first.listener_addresses.values()) & set(second.listener_addresses.values())
        assert first.hosts["nbiotacc.heclouds.com"] == first.listener_addresses["onenet"]
        assert second.hosts["183.230.40.40"] == second.listener_addresses["onenet"]
        factories = [ModuleFactory(first), ModuleFactory(second)]
        try:
            modules = [factory() for factory in factories]
            for module in modules:
                module.login()
                module.expect(r"\+MIPLEVENT: 0,6", timeout=10)
            assert first.registration(modules[0].endpoint) is not None
            assert first.registration(modules[1].endpoint) is None
            assert second.registration(modules[1].endpoint) is not None
        finally:
            for factory in factories:
                factory.close()


def test_each_xdist_worker_starts_in_its_own_loopback_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert worker_index() == 3
    assert next(candidate_addresses()) == "127.0.5.1"
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert next(candidate_addresses()) == "127.0.2.1"


def test_made_up_imeis_are_fifteen_digits_with_a_luhn_check_digit_and_unique() -> None:
    imeis = {make_imei() for _ in range(50)}
    assert len(imeis) == 50
    for imei in imeis:
        assert len(imei) == 15 and imei.isdigit()
        assert luhn_digit(imei[:14]) == imei[14]
    assert luhn_digit("49015420323751") == "8"  # the well-known check-digit example 490154203237518


def test_module_command_returns_response_lines_and_raises_on_cis_error(module) -> None:
    assert module.command("AT+CGSN=1") == [f'+CGSN: "{module.imei}"']
    with pytest.raises(AtCommandError) as caught:
        module.command("AT+MIPLOPEN=0,3600")
    assert caught.value.answer.startswith("+CIS ERROR")


def test_expect_timeout_names_the_pattern_and_shows_the_output(module) -> None:
    module.send("AT")
    with pytest.raises(TimeoutError, match=r"MIPLEVENT.*OK"):
        module.expect(r"\+MIPLEVENT: 0,6", timeout=0.2)


def test_wait_for_event_reads_registration_events_in_order(module, private_cloud) -> None:
    module.login()
    event = private_cloud.wait_for_event("registration.", endpoint=module.endpoint)
    assert event.kind == "registration.registered"
    with pytest.raises(TimeoutError, match="registration"):
        private_cloud.wait_for_event("registration.", endpoint=module.endpoint, timeout=0.2)


@pytest.mark.lwm2m_module(carrier="custom")
def test_custom_module_logs_in_at_the_default_listener(module, private_cloud) -> None:
    module.login()
    module.expect(r"\+MIPLEVENT: 0,6", timeout=10)
    assert private_cloud.wait_for_registration(module.endpoint).listener == "default"


@pytest.mark.postgres
def test_postgres_cloud_gets_a_database_of_its_own_and_drops_it() -> None:
    from tests.support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, missing, postgres_available

    if not postgres_available():
        missing(f"PostgreSQL is not reachable at {POSTGRES_HOST}:{POSTGRES_PORT}")
    url = f"postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"
    with PrivateCloud(url, http=False) as cloud:
        created = cloud.server.settings.database_url
        assert "/lwm2m_testbed_" in created
        product = cloud.create_product("onenet")
        assert cloud.provision(product, "869975030000461", "460041234567890").imei == "869975030000461"
    with PrivateCloud(url, http=False) as again:
        assert again.server.settings.database_url != created
        assert again.server.provisioning.products() == []
