"""The README's three-line minimal test, verbatim."""


def test_module_registers_with_the_private_cloud(module):
    module.login()
    module.expect(r"\+MIPLEVENT: 0,6", timeout=10)
