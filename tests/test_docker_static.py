"""The Dockerfile, checked without Docker (CI has no daemon and no registry; scripts/docker_check.sh
builds and runs the CPU image on a developer's machine): its stages, the install through
scripts/install_env.sh, what each stage installs (its RUN steps run here against stand-ins for
apt-get, ldconfig and the install script), the GPU rows of docs/docker.md's table against the
Dockerfile and the pins, and the Makefile using the image's environment."""
import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPILERS = {"g++", "gcc", "cmake", "clang", "build-essential"}


def dockerfile():
    """[(stage index, INSTRUCTION, arguments)]: continuation lines joined, comments dropped;
    stage -1 holds the ARGs before the first FROM."""
    with open(os.path.join(REPO, "Dockerfile")) as f:
        kept = "".join(line for line in f if not line.lstrip().startswith("#"))
    text = re.sub(r"\\\n", " ", kept)
    stage, out = -1, []
    for line in text.splitlines():
        if line.strip():
            op, args = line.strip().split(None, 1)
            stage += op == "FROM"
            out.append((stage, op, args))
    return out


def runs(stage):
    return [args for s, op, args in dockerfile() if s == stage and op == "RUN"]


def stage_of(name):
    return next(s for s, op, args in dockerfile() if op == "FROM" and args.endswith(" AS " + name))


def arg_defaults():
    """{name: default} of the stages' ARGs (the same in both stages)."""
    pairs = [args.split("=", 1) for s, op, args in dockerfile() if op == "ARG" and s >= 0]
    return {name: value.strip('"') for name, value in pairs}


def run_step(command, tmp_path, env=None, has_python3=True):
    """Runs one RUN step under bash (the Dockerfile's SHELL) with apt-get, ldconfig, rm, mkdir,
    sed and update-ca-certificates replaced by functions that record their arguments, and the
    system files it writes moved under tmp_path. Returns the recorded calls, one a line."""
    log = tmp_path / "calls.log"
    log.write_text("")
    for path in ("/etc/ssh/ssh_config", "/etc/pip.conf", "/usr/local/share/ca-certificates"):
        command = command.replace(path, str(tmp_path / path.replace("/", "_")))
    prelude = "".join('%s() { echo "%s $*" >> "$CALLS"; }\n' % (name, name) for name in
                      ("apt-get", "ldconfig", "rm", "sed", "update-ca-certificates"))
    prelude += ('command() { if [[ $1 == -v && $2 == python3* ]]; then [ "$HAS_PYTHON3" = 1 ]; '
                'else builtin command "$@"; fi; }\n')
    merged = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "HOROVOD_"))}
    merged.update(arg_defaults())  # as Docker sets the ARGs in a RUN's environment
    merged.update(CALLS=str(log), HAS_PYTHON3="1" if has_python3 else "0", **(env or {}))
    result = subprocess.run(["bash", "-o", "pipefail", "-c", prelude + command], env=merged,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return log.read_text().splitlines()


def installed(calls):
    words = [c.split()[1:] for c in calls if c.startswith("apt-get install")]
    assert len(words) == 1
    return {w for w in words[0] if not w.startswith("-")}


def test_the_stages_run_in_a_row_so_both_builders_build_the_same():
    """The legacy builder builds every stage; BuildKit only those the last one needs. With each
    stage used by the next and the images chosen by arguments (no stage chosen by one), both
    build the same thing and pull only the images named."""
    instructions = dockerfile()
    froms = [args for s, op, args in instructions if op == "FROM"]
    assert froms == ["${BASE_IMAGE} AS build", "${RUNTIME_IMAGE} AS runtime"]
    defaults = dict(args.split("=", 1) for s, op, args in instructions if s == -1 and op == "ARG")
    assert defaults == {"BASE_IMAGE": "python:3.11-slim-bookworm",
                        "RUNTIME_IMAGE": "python:3.11-slim-bookworm"}
    copied_from = {re.search(r"--from=(\S+)", args).group(1) for s, op, args in instructions
                   if op == "COPY" and "--from=" in args}
    assert copied_from == {"build"}
    assert not any(line.startswith("# syntax=") for line in open(os.path.join(REPO, "Dockerfile")))


def test_every_run_step_is_valid_bash():
    shell = [args for s, op, args in dockerfile() if op == "SHELL"]
    assert shell == ['["/bin/bash", "-o", "pipefail", "-c"]'] * 2  # one per stage
    for stage in (0, 1):
        for command in runs(stage):
            result = subprocess.run(["bash", "-n"], input=command, capture_output=True, text=True)
            assert result.returncode == 0, (command, result.stderr)


def test_the_environment_is_installed_only_by_the_install_script_in_the_build_stage():
    build, runtime = stage_of("build"), stage_of("runtime")
    assert sum(c.count("bash scripts/install_env.sh /opt/venv") for c in runs(build)) == 2
    assert not any("install_env" in c for c in runs(runtime))
    every_run = runs(build) + runs(runtime)
    assert not any(re.search(r"\bpip[\d.]*\s+install|-m\s+pip\b", c) for c in every_run), \
        "a second copy of the install in the Dockerfile"
    copies = [args for s, op, args in dockerfile() if s == runtime and op == "COPY"]
    assert "--from=build /opt/venv /opt/venv" in copies
    sources = [args.split()[0] for s, op, args in dockerfile()
               if op == "COPY" and not args.startswith("--from")]
    assert all(os.path.exists(os.path.join(REPO, p)) for p in sources if p != ".")
    cmd = [args for s, op, args in dockerfile() if op == "CMD"][-1]
    assert "horovodrun --check-build" in cmd and "gluon-tricks --help" in cmd


def test_pip_keeps_no_cache_in_either_stage():
    for stage in (stage_of("build"), stage_of("runtime")):
        env = " ".join(args for s, op, args in dockerfile() if s == stage and op == "ENV")
        assert "PIP_NO_CACHE_DIR=1" in env


@pytest.mark.parametrize("mxnet_package, has_python3", [("", True),
                                                        ("mxnet-cu117==1.9.1", False)])
def test_what_each_stage_installs(tmp_path, mxnet_package, has_python3):
    """CPU (python image) and GPU (a CUDA image without Python): the build stage gets the
    compilers, the runtime stage what runs without them."""
    env = {"MXNET_PACKAGE": mxnet_package}
    build = [c for c in runs(stage_of("build")) if "apt-get install" in c]
    runtime = [c for c in runs(stage_of("runtime")) if "apt-get install" in c]
    assert len(build) == len(runtime) == 1
    built_with = installed(run_step(build[0], tmp_path, env, has_python3))
    runs_with = installed(run_step(runtime[0], tmp_path, env, has_python3))
    assert {"cmake", "g++", "make"} <= built_with
    assert not runs_with & COMPILERS and not any(p.endswith("-dev") for p in runs_with)
    assert {"make", "libgomp1", "libquadmath0", "openssh-client", "curl"} <= runs_with
    gpu = bool(mxnet_package)
    assert ("openssh-server" in runs_with) == gpu  # horovodrun's other hosts run sshd
    # Python from the distribution where the image has none, with its headers to build with
    python = dockerfile_python()
    assert ({python, python + "-venv", python + "-dev"} <= built_with) == (not has_python3)
    assert (python in runs_with) == (not has_python3)
    ssh_config = (tmp_path / "_etc_ssh_ssh_config").read_text()
    assert ssh_config == "    StrictHostKeyChecking no\n"


@pytest.mark.parametrize("mxnet_package, index_url", [("", ""),
                                                      ("", "https://pypi.example.org/simple"),
                                                      ("mxnet-cu117==1.9.1", "")])
def test_the_install_step_sets_up_horovod_for_the_gpu_and_passes_only_given_index_flags(
        tmp_path, mxnet_package, index_url):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "install_env.sh").write_text(
        'for v in MXNET_PACKAGE HOROVOD_GPU_OPERATIONS HOROVOD_CUDA_HOME PIP_INDEX_URL; do\n'
        '  if [ -n "${!v+set}" ]; then echo "$v=${!v}"; else echo "$v unset"; fi\n'
        'done > "$ASKED"\n')
    include = tmp_path / "usr_include"
    include.mkdir()
    (include / "nccl.h").write_text("")
    first = next(c for c in runs(stage_of("build")) if "install_env.sh" in c)
    env = {"MXNET_PACKAGE": mxnet_package, "PIP_INDEX_URL": index_url, "PIP_EXTRA_INDEX_URL": "",
           "PIP_TRUSTED_HOST": "", "ASKED": str(tmp_path / "asked")}
    calls = run_step(first.replace("/usr/include/", str(include) + "/"), tmp_path, env)
    asked = dict(line.split("=", 1) if "=" in line else (line.split()[0], None)
                 for line in (tmp_path / "asked").read_text().splitlines())
    assert asked["PIP_INDEX_URL"] == (index_url or None)  # "" would be taken for an index
    assert (tmp_path / "gluon_tricks" / "__init__.py").exists()  # the stub package
    if mxnet_package:
        assert asked["HOROVOD_GPU_OPERATIONS"] == "NCCL"
        assert asked["HOROVOD_CUDA_HOME"] == "/usr/local/cuda"
        assert "ldconfig /usr/local/cuda/targets/x86_64-linux/lib/stubs" in calls
    else:
        assert asked["HOROVOD_GPU_OPERATIONS"] is None
        assert not any("stubs" in c for c in calls)


def test_a_gpu_build_on_an_image_without_nccl_headers_stops(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "install_env.sh").write_text("touch installed\n")
    first = next(c for c in runs(stage_of("build")) if "install_env.sh" in c)
    command = first.replace("/usr/include/", str(tmp_path / "nowhere") + "/")
    result = subprocess.run(["bash", "-c", command], env=dict(os.environ,
                            MXNET_PACKAGE="mxnet-cu117==1.9.1"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "NCCL" in result.stderr
    assert not (tmp_path / "installed").exists()


@pytest.mark.parametrize("certificate", ["", "-----BEGIN CERTIFICATE-----\nMIIB\n"
                                             "-----END CERTIFICATE-----"])
def test_a_ca_certificate_argument_is_trusted_by_the_system_and_pip(tmp_path, certificate):
    for stage in (stage_of("build"), stage_of("runtime")):
        step = [c for c in runs(stage) if "CA_CERT" in c]
        assert len(step) == 1
        (tmp_path / "_usr_local_share_ca-certificates").mkdir(exist_ok=True)
        calls = run_step(step[0], tmp_path, {"CA_CERT": certificate})
        written = tmp_path / "_usr_local_share_ca-certificates" / "build-arg-ca.crt"
        pip_conf = tmp_path / "_etc_pip.conf"
        if certificate:
            assert written.read_text() == certificate + "\n"
            assert calls == ["update-ca-certificates "]
            assert pip_conf.read_text() == "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
        else:
            assert not written.exists() and not pip_conf.exists() and calls == []


def make(tmp_path, *args, **env):
    merged = {k: v for k, v in os.environ.items() if k not in ("VENV", "MAKEFLAGS")}
    merged.update(env)
    return subprocess.run(["make", "--no-print-directory", *args], env=merged, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_the_images_environment_is_the_one_make_uses(tmp_path):
    """Inside the image (VENV=/opt/venv in its environment) `make demo` and `make test` use it as
    it is: nothing is installed and no .venv is made."""
    env = " ".join(args for s, op, args in dockerfile() if s == stage_of("runtime") and op == "ENV")
    assert "VENV=/opt/venv" in env and "PATH=/opt/venv/bin:$PATH" in env
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / "bin" / "python").chmod(0o755)
    demo = make(tmp_path, "-n", "demo", VENV=str(venv))
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.splitlines()[-1] == "%s/bin/python -m gluon_tricks demo" % venv
    assert "bash scripts/install_env.sh" not in demo.stdout
    test = make(tmp_path, "-n", "test", VENV=str(venv))
    assert test.returncode == 0, test.stderr
    assert "bash scripts/install_env.sh" not in test.stdout
    for tool in ("hadolint Dockerfile", "shellcheck", "ruff check", "-m pytest -q tests"):
        assert tool in test.stdout
    missing = make(tmp_path, "demo", VENV=str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[0].startswith("VENV=%s has no bin/python"
                                                             % (tmp_path / "nowhere"))


# -- the GPU images: docs/docker.md's table of GPU generations and build arguments

# The Python interpreters each Ubuntu release packages (main and universe).
UBUNTU_PYTHONS = {"20.04": {"python3.8", "python3.9"}, "22.04": {"python3.10", "python3.11"},
                  "24.04": {"python3.12"}}


def dockerfile_python():
    """The PYTHON argument's default, the same in both stages."""
    values = {args.split("=", 1)[1] for s, op, args in dockerfile()
              if op == "ARG" and args.startswith("PYTHON=")}
    assert len(values) == 1
    return values.pop()


def test_the_image_python_is_the_cpu_base_images():
    """A CUDA image gets the very Python version of the CPU image (python:3.11-...), the one the
    pins are installed with; some pins need 3.11."""
    base = next(args for s, op, args in dockerfile() if op == "ARG" and args.startswith("BASE_"))
    version = re.search(r"python:(\d+\.\d+)-", base).group(1)
    assert dockerfile_python() == "python" + version


def docker_page():
    """docs/docker.md, the page of the images, their build arguments and the GPU tables."""
    with open(os.path.join(REPO, "docs", "docker.md")) as f:
        return f.read()


def docker_page_images():
    """{image name: (BASE_IMAGE, RUNTIME_IMAGE, MXNET_PACKAGE)} from the docker page's table."""
    rows = re.findall(r"^\| *(\w+) *\| *`(nvidia/cuda:[^`]+)` *\| *`(nvidia/cuda:[^`]+)` *\|"
                      r" *`([^`]+)` *\|", docker_page(), re.M)
    return {name: (base, runtime, package) for name, base, runtime, package in rows}


def test_the_docker_pages_gpu_images_name_matching_cuda_images_and_wheels():
    images = docker_page_images()
    assert images
    with open(os.path.join(REPO, "requirements.txt")) as f:
        mxnet_pin = re.search(r"^mxnet==(\S+)", f.read(), re.M).group(1)
    tag = re.compile(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-cudnn8-(devel|runtime)-ubuntu(\d+\.\d+)$")
    for name, (base, runtime, package) in images.items():
        b, r = tag.match(base), tag.match(runtime)
        assert b and r, (base, runtime)
        assert b.group(3) == "devel" and r.group(3) == "runtime"  # nvcc and NCCL's headers to build
        assert base.replace("-devel-", "-runtime-") == runtime  # the same CUDA, cuDNN and Ubuntu
        wheel = re.match(r"mxnet-cu(\d+)(\d)==(\S+)$", package)
        assert wheel, package
        assert name == "cu" + wheel.group(1) + wheel.group(2)
        assert (wheel.group(1), wheel.group(2)) == (b.group(1), b.group(2))  # cu117: CUDA 11.7
        assert wheel.group(3) == mxnet_pin
        assert dockerfile_python() in UBUNTU_PYTHONS[b.group(4)]  # packaged by that Ubuntu


def test_every_gpu_generation_names_an_image_and_the_build_command_uses_one():
    section = docker_page()
    images = docker_page_images()
    generations = re.findall(r"^\| *([A-Z][a-z]+) \([^|]*\) *\|[^|]*\|[^|]*\| *([^|]+?) *\|$",
                             section, re.M)
    assert {"Volta", "Ampere", "Hopper"} <= {g for g, _ in generations}
    for generation, image in generations:
        assert image in images or image.startswith("none"), (generation, image)
    build_args = dict(re.findall(r"--build-arg (\w+)=(\S+)", section))
    assert (build_args["BASE_IMAGE"], build_args["RUNTIME_IMAGE"],
            build_args["MXNET_PACKAGE"]) in images.values()
