"""BIRD 1.6's control socket and process contract, for Calico (docs/birdcl.md).

* :mod:`.snapshot` – the plain-data state the daemon fills (the seam with the daemon);
* :mod:`.protocol` – the CLI line protocol, sans-I/O (greeting, framing, limits);
* :mod:`.lexer`, :mod:`.commands`, :mod:`.where` – BIRD's command grammar, server side;
* :mod:`.show` – the reply formatters, line for line as BIRD 1.6.8 prints them;
* :mod:`.engine` – one command: parse, answer from a snapshot, or call the daemon's handler;
* :mod:`.server` – the asyncio Unix-socket binding;
* :mod:`.cmdtable`, :mod:`.client` – the ``birdcl``-compatible client (``bgpd-birdcl``);
* :mod:`.process` – the ``bird``/``bird6`` entry points (options, argv[0], hand-off).
"""
