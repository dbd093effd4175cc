"""Checkpoints against damaged, hostile and non-finite files and full disks: the optimiser state
resumes bitwise from a file that cannot run code, every file is verified by size and SHA-256
before loading, names stay inside the save dir, NaN weights are never written nor called good,
and a full disk names the path and the free space and leaves no temporary file."""
import json
import os
import pickle
import subprocess

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from conftest import small_tmpfs
from gluon_tricks import files
from gluon_tricks.errors import UserError
from gluon_tricks.training import checkpoint, optimizer_state


def _net_and_trainer(dtype="float32", momentum=0.9):
    mx.random.seed(1)
    # The same parameter names in every call: the Trainer orders parameters by name and the
    # state is by index, so two nets named from the global counters (conv9/conv10 here,
    # conv11/conv12 there) would sort their layers differently.
    net = gluon.nn.HybridSequential(prefix="net_")
    with net.name_scope():
        net.add(gluon.nn.Conv2D(4, 3, in_channels=1), gluon.nn.BatchNorm(),
                gluon.nn.Conv2D(3, 1))
    net.initialize(mx.init.Xavier())
    net(mx.nd.ones((2, 1, 5, 5)))
    settings = {"momentum": momentum, "wd": 1e-4, "learning_rate": 0.1}
    if dtype != "float32":
        net.cast(dtype)
        settings["multi_precision"] = True  # NAG's (momentum, FP32 master weight) state
    return net, gluon.Trainer(net.collect_params(), "nag", settings)


def _steps(net, trainer, count, seed):
    """`count` NAG updates with random gradients (FP16 has no CPU convolution to backprop)."""
    rng = np.random.RandomState(seed)
    for i in range(count):
        for param in net.collect_params().values():
            if param.grad_req != "null":
                param.grad()[:] = mx.nd.array(rng.randn(*param.shape)).astype(param.dtype)
                param.list_data()[0]._fresh_grad = True
        trainer.set_learning_rate(0.1 / (1 + i))
        trainer.step(4)


def _weights(net):
    return [p.data().asnumpy() for p in net.collect_params().values()]


@pytest.mark.parametrize("dtype,momentum", [("float32", 0.9), ("float32", 0.0),
                                            ("float16", 0.9), ("float16", 0.0)])
def test_optimizer_state_resumes_bitwise_like_mxnets_pickle(tmp_path, dtype, momentum):
    net, trainer = _net_and_trainer(dtype, momentum)
    _steps(net, trainer, 3, seed=0)
    net.save_parameters(str(tmp_path / "w.params"))
    optimizer_state.save_states(trainer, str(tmp_path / "ours.states"))
    trainer.save_states(str(tmp_path / "mxnet.states"))
    _steps(net, trainer, 2, seed=9)
    straight = _weights(net)
    assert optimizer_state.file_kind(str(tmp_path / "ours.states")) == "ndarray"
    assert optimizer_state.file_kind(str(tmp_path / "mxnet.states")) == "pickle"
    for load in (lambda t: optimizer_state.load_states(t, str(tmp_path / "ours.states")),
                 lambda t: t.load_states(str(tmp_path / "mxnet.states")), None):
        other, other_trainer = _net_and_trainer(dtype, momentum)
        other.load_parameters(str(tmp_path / "w.params"))
        if load is not None:
            load(other_trainer)
            assert other_trainer._optimizer.num_update == 3
        _steps(other, other_trainer, 2, seed=9)
        same = all(np.array_equal(a, b) for a, b in zip(straight, _weights(other)))
        # without the state (None) the momentum restarts from zero and FP16's master weights
        # from the rounded weights: the weights differ
        assert same == (load is not None or (momentum == 0.0 and dtype == "float32"))


def test_the_state_of_another_network_or_a_params_file_is_refused(tmp_path):
    net, trainer = _net_and_trainer()
    _steps(net, trainer, 1, seed=0)
    optimizer_state.save_states(trainer, str(tmp_path / "a.states"))
    net.save_parameters(str(tmp_path / "a.params"))
    small = gluon.nn.Dense(3, in_units=2)
    small.initialize()
    small_trainer = gluon.Trainer(small.collect_params(), "nag", {"momentum": 0.9})
    with pytest.raises(UserError, match="a.states holds the optimizer state of 8 parameters, "
                                        "this network has 2"):
        optimizer_state.load_states(small_trainer, str(tmp_path / "a.states"))
    with pytest.raises(UserError, match="a.params holds network weights"):
        optimizer_state.load_states(trainer, str(tmp_path / "a.params"))
    with pytest.raises(UserError, match="saved with momentum 0.9 but --momentum is 0.5"):
        optimizer_state.load_states(trainer, str(tmp_path / "a.states"), momentum=0.5, wd=1e-4)


class _Exploit:
    """A pickle that runs code when loaded: it creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _save(tmp_path, epoch=1, net=None, trainer=None, batch=0):
    if net is None:
        net, trainer = _net_and_trainer()
        _steps(net, trainer, 1, seed=epoch)
    return checkpoint.save_checkpoint(str(tmp_path), net, trainer, "m", epoch, epoch * 4,
                                      {"seed": 0}, batch=batch)


def test_every_file_is_listed_with_size_and_sha256_and_verified(tmp_path):
    path = _save(tmp_path)
    record = json.load(open(path))
    for kind in ("params", "states"):
        entry = record["files"][kind]
        assert files.digest(str(tmp_path / entry["name"])) == (entry["size"], entry["sha256"])
    assert checkpoint.find_latest(str(tmp_path), "m")["path"] == path
    assert os.listdir(tmp_path) and not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


@pytest.mark.parametrize("damage", ["truncate params", "zero states", "truncate json",
                                    "pickle states", "pickle states, digest updated",
                                    "parent name", "absolute name", "nan weights"])
def test_a_damaged_or_hostile_newest_checkpoint_is_named_and_skipped(tmp_path, damage):
    _save(tmp_path, epoch=1)
    newest = _save(tmp_path, epoch=2)
    marker = str(tmp_path / "exploit-ran")
    record = json.load(open(newest))
    params, states = (str(tmp_path / record["files"][k]["name"]) for k in ("params", "states"))
    if damage == "truncate params":
        os.truncate(params, os.path.getsize(params) // 2)
    elif damage == "zero states":
        size = os.path.getsize(states)
        open(states, "wb").write(bytes(size))
    elif damage == "truncate json":
        os.truncate(newest, os.path.getsize(newest) // 2)
    elif damage.startswith("pickle states"):
        open(states, "wb").write(pickle.dumps(_Exploit(marker)))
        if damage.endswith("digest updated"):
            size, sha = files.digest(states)
            record["files"]["states"].update(size=size, sha256=sha)
            json.dump(record, open(newest, "w"))
    elif damage == "parent name":
        outside = tmp_path.parent / "outside.params"
        outside.write_bytes(open(params, "rb").read())
        record["files"]["params"]["name"] = "../outside.params"
        json.dump(record, open(newest, "w"))
    elif damage == "absolute name":
        record["files"]["params"]["name"] = params
        json.dump(record, open(newest, "w"))
    elif damage == "nan weights":
        arrays = mx.nd.load(params)
        first = sorted(arrays)[0]
        arrays[first][:] = np.nan
        mx.nd.save(params, arrays)
        size, sha = files.digest(params)
        record["files"]["params"].update(size=size, sha256=sha)
        json.dump(record, open(newest, "w"))
    reports = []
    found = checkpoint.find_latest(str(tmp_path), "m", reports.append)
    assert found["path"].endswith("m-0001.json")
    assert len(reports) == 1 and newest in reports[0] and "skipped" in reports[0]
    net, trainer = _net_and_trainer()
    checkpoint.load_checkpoint(found, net, trainer, [mx.cpu()])
    if damage.startswith("pickle states"):  # and loading it directly: refused, not unpickled
        with pytest.raises(UserError, match="pickled optimizer state"):
            optimizer_state.load_states(trainer, states)
    assert not os.path.exists(marker)


def test_a_save_dir_with_only_bad_checkpoints_is_never_overwritten_silently(tmp_path):
    only = _save(tmp_path, epoch=1)
    os.truncate(only, 10)
    with pytest.raises(UserError, match="none passes verification.*--fresh-start"):
        checkpoint.resume_point(str(tmp_path), "m", lambda line: None)
    assert checkpoint.resume_point(str(tmp_path), "m", lambda line: None,
                                   fresh_start=True) is None
    assert checkpoint.resume_point(str(tmp_path / "empty"), "m", lambda line: None) is None


def test_non_finite_weights_or_states_are_never_written(tmp_path):
    net, trainer = _net_and_trainer()
    _steps(net, trainer, 1, seed=0)
    list(net.collect_params().values())[2].data()[1] = np.inf
    with pytest.raises(UserError, match="refusing to write a checkpoint at epoch 3.*NaN or "
                                        "infinity"):
        _save(tmp_path, epoch=3, net=net, trainer=trainer)
    net, trainer = _net_and_trainer()
    _steps(net, trainer, 1, seed=0)
    trainer._updaters[0].states[0][:] = np.nan  # the momentum of the first weight
    assert checkpoint.non_finite_parameters(net, trainer) == ["optimizer state 0"]
    with pytest.raises(UserError):
        _save(tmp_path, epoch=3, net=net, trainer=trainer)
    assert os.listdir(tmp_path) == []


def test_mid_epoch_checkpoints_sort_after_their_epoch_and_the_newest_k_are_kept(tmp_path):
    net, trainer = _net_and_trainer()
    for epoch, batch in ((1, 0), (1, 3), (1, 7), (2, 0), (2, 2)):
        _save(tmp_path, epoch, net, trainer, batch)
    names = [os.path.basename(p) for p in checkpoint.checkpoint_jsons(str(tmp_path), "m")]
    assert names == ["m-0002-batch000002.json", "m-0002.json", "m-0001-batch000007.json",
                     "m-0001-batch000003.json", "m-0001.json"]
    assert checkpoint.find_latest(str(tmp_path), "m")["batch"] == 2
    checkpoint.prune_checkpoints(str(tmp_path), "m", keep=2)
    names = sorted(os.listdir(tmp_path))
    assert not [n for n in names if n.startswith("m-0001-batch000003")]
    assert "m-0001-batch000007.params" in names and "m-0001.states" in names


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = files.temp_name(str(tmp_path / "m-0001.params")).rsplit("-", 1)[0] + "-%d" % dead.pid
    ours = files.temp_name(str(tmp_path / "m-0002.params"))
    other_host = str(tmp_path / ("m-0003.params" + files.TEMP_MARK + "elsewhere-%d" % dead.pid))
    for path in (stale, ours, other_host):
        open(path, "w").write("x")
    assert checkpoint.remove_stale_temp_files(str(tmp_path)) == [stale]
    assert os.path.exists(ours) and os.path.exists(other_host)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MB file system (a tmpfs: needs root), to fill."""
    with small_tmpfs(tmp_path / "disk", "3m") as mount:
        yield mount


def test_a_full_disk_names_the_path_and_the_free_space_and_leaves_no_temporary_file(
        tiny_disk):
    net = gluon.nn.Dense(1000, in_units=1000)  # 4 MB of weights: more than the disk
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "nag", {"momentum": 0.9})
    with pytest.raises(UserError, match=r"not enough disk space for a checkpoint: it needs about "
                                        r"12\.\d MB, 3\.0 MB are free in .*disk"):
        checkpoint.save_checkpoint(str(tiny_disk), net, trainer, "m", 1, 1, {})
    open(tiny_disk / "filler", "wb").write(bytes(2 << 20))  # then the disk fills mid-write
    with pytest.raises(UserError, match=r"disk full while writing .*disk/m\.params \(\d\.\d MB "
                                        r"free in .*disk\); the partial file was removed"):
        files.write_atomically(str(tiny_disk / "m.params"), net.save_parameters)
    assert sorted(os.listdir(tiny_disk)) == ["filler"]


def test_pack_on_a_full_disk_names_the_path_and_leaves_nothing(small_image_set, tiny_disk,
                                                               tmp_path):
    from gluon_tricks.data.pack import pack_folder
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = files.temp_name(str(tiny_disk / "set"), ".rec").replace(
        "-%d." % os.getpid(), "-%d." % dead.pid)  # an interrupted pack's leftover
    open(stale, "wb").write(bytes(4096))
    images = sum(os.path.getsize(os.path.join(d, f)) for d, _, names in
                 os.walk(small_image_set["folder"]) for f in names)
    open(tiny_disk / "filler", "wb").write(bytes((3 << 20) - 4096 - images // 2))
    with pytest.raises(UserError, match=r"the packed images: it needs about 0\.\d+ MB, 0\.\d+ MB "
                                        r"are free"):
        pack_folder(small_image_set["folder"], str(tiny_disk / "set"), progress=False)
    assert not os.path.exists(stale)
    big = tmp_path / "big"  # large noisy PNGs: the free-space estimate passes, the disk fills
    for name in ("a", "b"):
        (big / name).mkdir(parents=True)
        for i in range(3):
            noise = np.random.RandomState(i).randint(0, 255, (300, 300, 3)).astype(np.uint8)
            import cv2
            cv2.imwrite(str(big / name / ("%d.png" % i)), noise)
    os.remove(tiny_disk / "filler")
    open(tiny_disk / "filler", "wb").write(bytes((3 << 20) - (900 << 10)))
    with pytest.raises(UserError, match=r"disk full while writing .*set\.tmp-.*\.rec \(0\.\d MB "
                                        r"free in .*disk\)"):
        pack_folder(str(big), str(tiny_disk / "set"), resize=299, quality=100, progress=False)
    assert sorted(os.listdir(tiny_disk)) == ["filler"]
