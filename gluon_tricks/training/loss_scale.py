"""Loss scaling for FP16 training (paper section 3.2), static (`--loss-scale 1024`) or dynamic
as AMP does (start at 2^16, skip the update and halve on inf/NaN gradients, double after `window`
clean steps). Pure Python; docs/performance.md, "Mixed precision", says what a skip leaves."""
from gluon_tricks.errors import UserError

DYNAMIC_INITIAL_SCALE = 2.0 ** 16  # NVIDIA's and MXNet AMP's starting scale
MAX_SCALE = 2.0 ** 24              # AMP's ceiling: beyond it FP16 gradients overflow anyway
MIN_SCALE = 1.0                    # below 1 scaling no longer helps: the gradients are not finite
DEFAULT_WINDOW = 2000              # clean steps before the scale doubles (AMP's scale_seq_len)


def parse_loss_scale(text):
    """`--loss-scale` -> (scale, dynamic): a positive number, or 'dynamic'."""
    if str(text).strip().lower() == "dynamic":
        return DYNAMIC_INITIAL_SCALE, True
    try:
        scale = float(text)
    except ValueError:
        raise UserError("--loss-scale must be a positive number or 'dynamic', not %r"
                        % text) from None
    if not scale > 0 or scale == float("inf"):
        raise UserError("--loss-scale must be a positive finite number or 'dynamic', not %r"
                        % text)
    return scale, False


class LossScaler:
    """A run's loss `scale`; `record(finite)` after each step says whether to apply the update."""

    def __init__(self, scale=1.0, dynamic=False, window=DEFAULT_WINDOW):
        if window < 1:
            raise UserError("--loss-scale-window must be >= 1")
        self.scale = float(scale)
        self.dynamic = bool(dynamic)
        self.window = int(window)
        self.clean_steps = 0   # finite steps since the last change of the scale
        self.skipped = 0       # updates skipped over the whole run
        self.exhausted = False  # a non-finite gradient at the smallest scale: training diverged

    @classmethod
    def from_flag(cls, text, window=DEFAULT_WINDOW):
        scale, dynamic = parse_loss_scale(text)
        return cls(scale, dynamic, window)

    @property
    def active(self):
        """Whether the step must do anything at all (scale the loss, or check every step)."""
        return self.dynamic or self.scale != 1.0

    def record(self, finite):
        """Account for one step whose reduced gradients were `finite`; True: apply the update
        (always when static: divergence is checked elsewhere)."""
        if not self.dynamic:
            return True
        if finite:
            self.clean_steps += 1
            if self.clean_steps >= self.window:
                self.scale = min(self.scale * 2.0, MAX_SCALE)
                self.clean_steps = 0
            return True
        self.skipped += 1
        self.clean_steps = 0
        if self.scale <= MIN_SCALE:
            self.exhausted = True  # still overflowing at scale 1: the model itself is not finite
        self.scale = max(self.scale / 2.0, MIN_SCALE)
        return False

    def state(self):
        """What a checkpoint saves (JSON-safe) to resume with the same scale."""
        return {"scale": self.scale, "dynamic": self.dynamic, "window": self.window,
                "clean_steps": self.clean_steps, "skipped": self.skipped}

    def load_state(self, state):
        """Continue from a checkpoint's `state()` (dynamic runs only: a static scale is a flag)."""
        if not state or not self.dynamic or not state.get("dynamic"):
            return
        self.scale = float(state["scale"])
        self.clean_steps = int(state.get("clean_steps", 0))
        self.skipped = int(state.get("skipped", 0))

    def describe(self):
        """One phrase for the log, e.g. 'dynamic loss scale 65536 (3 updates skipped)'."""
        if self.dynamic:
            return "dynamic loss scale %g (%d updates skipped)" % (self.scale, self.skipped)
        return "loss scale %g" % self.scale


def check_precision(dtype, loss_scale, amp, on_gpu):
    """--dtype, --loss-scale and --amp only in combinations that work, refused in one line."""
    scale, dynamic = parse_loss_scale(loss_scale)
    if amp and not on_gpu:
        raise UserError("--amp needs GPUs (--num-gpus N): mxnet.contrib.amp runs FP16 kernels, "
                        "which MXNet's CPU lacks; train in float32 on the CPU")
    if amp and dtype != "float32":
        raise UserError("--amp casts a float32 network itself: leave --dtype at float32")
    if amp and (dynamic or scale != 1.0):
        raise UserError("--amp brings its own dynamic loss scale: drop --loss-scale")
