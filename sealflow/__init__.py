"""The shell: the ``sealflow`` command, its composition root, the embedded-stack launcher and the demo.

The top layer of the house (``docs/architecture.md``): it may import every package below it and none
imports it. The foundation it once held (settings, database, files, object store) is ``kernel``.
"""
