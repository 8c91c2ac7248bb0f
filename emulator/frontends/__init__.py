"""Front-ends that carry an emulated module's AT bytes: a TCP socket (`tcp.serve_tcp`) and a
pseudo-terminal a serial library can open (`pty.open_pty`)."""
