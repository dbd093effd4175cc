"""The distributed environment, passed explicitly: one process, or one of N Horovod ranks
(Horovod is imported only under horovodrun or mpirun)."""
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

_LAUNCHER_RANK_VARIABLES = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


@dataclass(frozen=True)
class World:
    """rank/size/local_rank of this process; `hvd` is the horovod.mxnet module when size > 1."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    hvd: Any = None

    @property
    def is_root(self):
        return self.rank == 0

    @classmethod
    def from_environment(cls):
        """Horovod's world when launched by horovodrun/mpirun, else a single process."""
        if not any(name in os.environ for name in _LAUNCHER_RANK_VARIABLES):
            return cls()
        # Pillow first: horovod.mxnet loads libmxnet with RTLD_GLOBAL, and a Pillow loaded
        # after it binds libmxnet's own libjpeg: JPEGs decode black or fail.
        import PIL.Image  # noqa: F401
        import horovod.mxnet as hvd
        hvd.init()
        return cls(rank=hvd.rank(), size=hvd.size(), local_rank=hvd.local_rank(), hvd=hvd)

    def broadcast_parameters(self, net):
        """Every rank starts from rank 0's weights (and BN statistics)."""
        if self.size > 1:
            self.hvd.broadcast_parameters(net.collect_params(), root_rank=0)

    def average_batch_norm_statistics(self, net):
        """Average the BN running statistics over ranks, so all validate and save one network."""
        if self.size == 1:
            return
        for name, param in sorted(net.collect_params().items()):
            if param.grad_req == "null" and not getattr(param, "frozen", False):  # frozen: equal
                data = param.data()
                data[:] = self.hvd.allreduce(data, average=True, name="bn_stats." + name)

    def finish(self):
        """Shut Horovod down together (a rank exiting early resets the others' Gloo links)."""
        if self.size > 1:
            self.sum([0.0], name="finish")
            self.hvd.shutdown()

    def sum(self, values, name):
        """Element-wise sum of a small float64 vector over all ranks (exact validation counts)."""
        values = np.asarray(values, dtype=np.float64)
        if self.size == 1:
            return values
        import mxnet as mx
        total = self.hvd.allreduce(mx.nd.array(values, dtype=np.float64), average=False, name=name)
        return total.asnumpy()

    def gather_text(self, text, name):
        """`text` (a short string) of every rank, in rank order."""
        if self.size == 1:
            return [text]
        return [str(item) for item in self.hvd.allgather_object(text, name=name)]
