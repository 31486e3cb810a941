"""fairshelf's shared kernel: the error tree, the command line and the demo.

It belongs to no single part. The parts (``recsys``, ``pricing``, ``training``, ``serving``)
import ``fairshelf.errors`` and nothing else from here; only the command line imports the parts.
"""
