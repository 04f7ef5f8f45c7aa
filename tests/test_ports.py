"""Ports: two free ports asked for one after the other are never the same port (the kernel may
give the same free port twice when nobody has bound it yet), and no app listens on a
controller's own port."""

from __future__ import annotations

from rollwise.backends.ports import free_port
from rollwise.controller.serving import own_port


def test_ports_handed_out_in_a_row_are_all_different() -> None:
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)


def test_an_app_listen_on_a_controller_port_is_named_by_its_flag() -> None:
    own = {"--api-listen": ("127.0.0.1", 8470), "--metrics-port": ("0.0.0.0", 9100)}
    assert own_port("127.0.0.1:8470", own) == "--api-listen"
    assert own_port("127.0.0.2:9100", own) == "--metrics-port"  # all addresses
    assert own_port("[::1]:8470", {"--dashboard": ("::1", 8470)}) == "--dashboard"
    assert own_port("127.0.0.2:8470", own) is None
    assert own_port("127.0.0.1:8471", own) is None
