"""The thermometer end to end on the private cloud: the driver over a serial port (the module's
PTY or its socket:// URL), the backend over the OneNET API. Only the plugin's fixtures are used."""

from __future__ import annotations

import pytest
from thermometer.backend import Backend, OneNetError
from thermometer.driver import Thermometer


@pytest.fixture(params=["pty", "socket"])
def serial_port(request, module):
    return module.pty_path if request.param == "pty" else module.serial_url


def test_driver_logs_in_and_the_backend_sees_the_device_online(module, onenet_product, serial_port):
    backend = Backend(onenet_product.base_url, onenet_product.api_key)
    with Thermometer(serial_port, read_sensor=lambda: 21.5) as thermometer:
        thermometer.login()
        assert backend.is_online(module.imei)
    backend.close()


def test_backend_reads_the_temperature_the_driver_measures(module, onenet_product, serial_port):
    backend = Backend(onenet_product.base_url, onenet_product.api_key)
    with Thermometer(serial_port, read_sensor=lambda: 23.25) as thermometer:
        thermometer.login()
        assert backend.read_temperature(module.imei) == 23.25
        module.expect(r"\+MIPLREAD: 0,\d+,3303,0,5700")
    backend.close()


def test_reported_temperature_is_stored_as_a_datapoint(module, private_cloud):
    with Thermometer(module.serial_url, read_sensor=lambda: 20.0) as thermometer:
        thermometer.login()
        # OneNET observes every object instance of a device provisioned with obsv (the default).
        assert thermometer.observed.wait(5)
        assert thermometer.report(24.5)
        point = private_cloud.wait_for_datapoint(module.endpoint, "/3303/0/5700")
    assert point.value == 24.5


def test_reading_an_offline_device_is_a_onenet_error(module, onenet_product):
    backend = Backend(onenet_product.base_url, onenet_product.api_key)
    with pytest.raises(OneNetError) as caught:
        backend.read_temperature(module.imei)
    assert caught.value.errno == 2001
    backend.close()


@pytest.mark.lwm2m_module(model="ML307A", carrier="ctwing")
def test_ctwing_module_registers_with_its_imei(module, private_cloud):
    module.login()
    module.expect(r"\+MIPLEVENT: 0,6", timeout=10)
    assert private_cloud.wait_for_registration(module.imei).listener == "ctwing"
