# gluon-tricks images; both install with scripts/install_env.sh, the script CI runs (`make test`).
#
#   docker build -t gluon-tricks .                              GPU (default): CUDA 11.2, cuDNN 8,
#                                                               NCCL, mxnet-cu112, Horovod NCCL+Gloo
#   docker build --build-arg VARIANT=cpu -t gluon-tricks:cpu .  CPU: exactly CI's install
#   docker run --rm --gpus all gluon-tricks                     prints horovodrun --check-build
#                                                               and gluon-tricks --help
#
# GPU base: mxnet-cu112 1.9.1 links CUDA 11.2's runtime libraries, cuDNN 8 and NCCL 2 from the
# system, so the base is NVIDIA's CUDA 11.2 image with cuDNN 8 (the devel flavour: Horovod compiles
# CUDA code with nvcc against NCCL's headers); Horovod's own GPU Dockerfile builds on the same
# 11.2.2 Ubuntu 20.04 image with mxnet-cu112. requirements.txt's pins need Python >= 3.10 (CI runs
# 3.11) and Ubuntu 20.04 ships 3.8; deadsnakes deletes its packages once an Ubuntu release reaches
# its end of life (20.04 did in 2025), and no CUDA 11.2 image exists for a newer Ubuntu. So Python
# 3.11 comes from the official python image built on Debian 11: its glibc (2.31) is Ubuntu 20.04's.
# Needs BuildKit (Docker >= 23 uses it by default) to skip the stage VARIANT does not select.
ARG VARIANT=gpu
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-devel-ubuntu20.04
ARG PYTHON_IMAGE=python:3.11-slim-bullseye
ARG CPU_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS python311

# CPU: CI's machine is Debian 12 with Python 3.11; Horovod's build needs cmake, g++ and make.
FROM ${CPU_IMAGE} AS base-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ make openssh-client \
 && rm -rf /var/lib/apt/lists/*

FROM ${CUDA_IMAGE} AS base-gpu
ARG DEBIAN_FRONTEND=noninteractive
# NVIDIA's apt sources are dropped: everything CUDA comes with the image (their old signing keys
# also break `apt-get update` in images of this age). The lib* packages are what Python needs.
RUN rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia-ml*.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates cmake g++ make \
      openssh-client openssh-server \
      libbz2-1.0 libexpat1 libffi7 libgdbm6 libgdbm-compat4 liblzma5 libncursesw6 libnsl2 \
      libreadline8 libsqlite3-0 libssl1.1 libtirpc3 libuuid1 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && { [ -f /usr/include/nccl.h ] || { echo "the CUDA image has no NCCL headers" >&2; exit 1; }; }
COPY --from=python311 /usr/local/bin/ /usr/local/bin/
COPY --from=python311 /usr/local/lib/ /usr/local/lib/
COPY --from=python311 /usr/local/include/ /usr/local/include/
RUN ldconfig && python3.11 -c "import bz2, ctypes, ensurepip, lzma, sqlite3, ssl, venv, zlib"
# Several hosts: horovodrun reaches the other containers over ssh (see README, "Docker").
RUN mkdir -p /var/run/sshd \
 && grep -v StrictHostKeyChecking /etc/ssh/ssh_config > /tmp/ssh_config \
 && echo "    StrictHostKeyChecking no" >> /tmp/ssh_config \
 && mv /tmp/ssh_config /etc/ssh/ssh_config
# What install_env.sh needs to differ on a GPU: the CUDA build of the same MXNet, and Horovod's
# GPU operations on NCCL (its CPU operations stay on Gloo). No driver exists while building, so
# libcuda.so.1 comes from CUDA's stubs during the install, as in Horovod's Dockerfile.
ENV LANG=C.UTF-8 \
    PYTHON=python3.11 \
    MXNET_PACKAGE=mxnet-cu112==1.9.1 \
    HOROVOD_GPU_OPERATIONS=NCCL \
    HOROVOD_CUDA_HOME=/usr/local/cuda \
    CUDA_STUBS=/usr/local/cuda/targets/x86_64-linux/lib/stubs

FROM base-${VARIANT}
WORKDIR /opt/gluon-tricks
# 1. The pinned stack and Horovod, from the files that define them (and a stub package), so that
#    this slow layer is rebuilt only when the pins or the install script change.
COPY requirements.txt setup.py ./
COPY scripts/install_env.sh scripts/
RUN mkdir gluon_tricks && touch gluon_tricks/__init__.py \
 && if [ -n "${CUDA_STUBS:-}" ]; then ldconfig "$CUDA_STUBS"; fi \
 && bash scripts/install_env.sh /opt/venv \
 && ldconfig
# 2. gluon-tricks itself: the same script finds the stack and Horovod in place and installs it.
COPY . .
RUN if [ -n "${CUDA_STUBS:-}" ]; then ldconfig "$CUDA_STUBS"; fi \
 && bash scripts/install_env.sh /opt/venv \
 && ldconfig
ENV PATH=/opt/venv/bin:$PATH
CMD ["bash", "-c", "horovodrun --check-build && gluon-tricks --help"]
