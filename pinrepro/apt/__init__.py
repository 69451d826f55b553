"""apt pinning: find ``apt-get install`` in RUN lines, resolve their closure with apt itself, pin and record.

- ``find``: the installs of each stage, read through pinrepro.dockerfile's RUN scripts and shell lexer;
- ``sources``: the apt sources an image uses (one-line and deb822), and their snapshot URLs;
- ``resolve``: the host's apt-get in a private directory: ``update`` and a simulated ``install``;
- ``pin``: ``name`` -> ``name=version`` in the Dockerfile, byte-exact;
- ``stages``: per stage and platform, which image and which earlier installs it builds on.
"""
