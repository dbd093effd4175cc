"""gluon-tricks: Bag of Tricks for Image Classification (He et al., CVPR 2019) in MXNet Gluon.

Nothing is imported here on purpose: `import gluon_tricks` stays cheap, and MXNet, GluonCV and
Horovod load only where a command needs them.
"""
__version__ = "0.1.0"
