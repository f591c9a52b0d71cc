"""The ``mmp`` command line: a thin click layer over mmpdata and mmpmodel."""
