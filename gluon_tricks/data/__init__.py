"""Input data: the paper's preprocessing, RecordIO and image-folder sources, the packing tool,
the embedded demo set, and the parallel loaders. Modules import MXNet only where they need it."""
