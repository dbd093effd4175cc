# gluon-tricks images. Both install with scripts/install_env.sh, the script CI runs (`make test`),
# in a build stage that has the compilers Horovod's build needs; the runtime stage copies the
# finished environment (/opt/venv) onto an image without them.
#
#   docker build -t gluon-tricks:cpu .            CPU: python:3.11-slim-bookworm, as CI
#   docker build -t gluon-tricks:cu117 \          GPU: docs/docker.md's table gives the
#     --build-arg BASE_IMAGE=nvidia/cuda:11.7.1-cudnn8-devel-ubuntu22.04 \     three arguments
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:11.7.1-cudnn8-runtime-ubuntu22.04 \  per GPU
#     --build-arg MXNET_PACKAGE=mxnet-cu117==1.9.1 .                              generation
#   docker run --rm gluon-tricks:cpu              horovodrun --check-build; gluon-tricks --help
#   docker run --rm gluon-tricks:cpu make test    the README's commands use /opt/venv in here
#
# One stage after the other, no stage chosen by an argument: the legacy builder (which builds
# every stage) and BuildKit build the same thing, and no image is pulled that is not used.
#
# Build arguments:
#   BASE_IMAGE, RUNTIME_IMAGE  the build and the runtime image: the same OS and Python. An image
#                  without PYTHON (NVIDIA's CUDA images) gets its distribution's package of it.
#   PYTHON         the interpreter, python3.11 (three of the pins need >= 3.11; Ubuntu 22.04 has
#                  python3.11 in universe, beside its python3, 3.10).
#   MXNET_PACKAGE  replaces requirements.txt's mxnet pin: mxnet-cu1XX==1.9.1 makes a GPU image
#                  (Horovod's GPU operations on NCCL, its CPU operations on Gloo).
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST  a private index or a proxy, as pip reads them.
#   CA_CERT        the text of PEM certificates to trust (a proxy that intercepts HTTPS):
#                  --build-arg CA_CERT="$(cat corp-ca.crt)"; pip then uses the system's store.
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG RUNTIME_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
ARG CA_CERT=""
ARG MXNET_PACKAGE=""
ARG PYTHON=python3.11
ARG PIP_INDEX_URL=""
ARG PIP_EXTRA_INDEX_URL=""
ARG PIP_TRUSTED_HOST=""
ENV LANG=C.UTF-8 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if [ -n "$CA_CERT" ]; then \
      printf '%s\n' "$CA_CERT" > /usr/local/share/ca-certificates/build-arg-ca.crt \
      && update-ca-certificates \
      && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > /etc/pip.conf; \
    fi
# Horovod's build needs cmake, g++ and make; NVIDIA's apt sources are dropped (everything CUDA
# comes with the image, and `apt-get update` then needs no key of theirs).
# hadolint ignore=DL3008
RUN rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia-ml*.list \
 && packages=(cmake g++ make) \
 && if ! command -v "$PYTHON" >/dev/null; then packages+=("$PYTHON" "$PYTHON-venv" "$PYTHON-dev"); fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends "${packages[@]}" \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/gluon-tricks
# install_env.sh in two steps, each `bash scripts/install_env.sh /opt/venv`:
# 1. the pinned stack and Horovod, from the files that define them (and a stub package), so that
#    this slow layer is rebuilt only when the pins or the install script change;
# 2. gluon-tricks itself: the same script finds the stack and Horovod in place.
# With a CUDA MXNet no driver exists while building: libcuda.so.1 comes from CUDA's stubs, as in
# Horovod's Dockerfile. Empty PIP_* arguments are unset (pip would take "" for an index).
COPY requirements.txt setup.py ./
COPY scripts/install_env.sh scripts/
RUN mkdir gluon_tricks && touch gluon_tricks/__init__.py \
 && for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do \
      if [ -z "${!var}" ]; then unset "$var"; fi; \
    done \
 && if [[ $MXNET_PACKAGE == mxnet-cu* ]]; then \
      { [ -f /usr/include/nccl.h ] || { echo "no NCCL headers: BASE_IMAGE must be a devel image" >&2; exit 1; }; } \
      && export HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_CUDA_HOME=/usr/local/cuda \
      && ldconfig /usr/local/cuda/targets/x86_64-linux/lib/stubs; \
    fi \
 && bash scripts/install_env.sh /opt/venv \
 && ldconfig \
 && rm -rf /root/.cache
COPY . .
RUN if [[ $MXNET_PACKAGE == mxnet-cu* ]]; then ldconfig /usr/local/cuda/targets/x86_64-linux/lib/stubs; fi \
 && bash scripts/install_env.sh /opt/venv \
 && ldconfig \
 && rm -rf /root/.cache

FROM ${RUNTIME_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
ARG CA_CERT=""
ARG MXNET_PACKAGE=""
ARG PYTHON=python3.11
ENV LANG=C.UTF-8 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if [ -n "$CA_CERT" ]; then \
      printf '%s\n' "$CA_CERT" > /usr/local/share/ca-certificates/build-arg-ca.crt \
      && update-ca-certificates \
      && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > /etc/pip.conf; \
    fi
# What runs, without compilers: make (the README's `make demo`, `make test`), MXNet's OpenMP and
# its bundled gfortran's quadmath, ssh for horovodrun across hosts (a GPU image also runs sshd:
# docs/docker.md), curl (scripts/fetch_gluoncv_logs.sh), and PYTHON where the image has none.
# hadolint ignore=DL3008
RUN rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia-ml*.list \
 && packages=(make libgomp1 libquadmath0 openssh-client curl) \
 && if [[ $MXNET_PACKAGE == mxnet-cu* ]]; then packages+=(openssh-server); fi \
 && if ! command -v "$PYTHON" >/dev/null; then packages+=("$PYTHON"); fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends "${packages[@]}" \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/run/sshd \
 && sed -i '/StrictHostKeyChecking/d' /etc/ssh/ssh_config \
 && echo "    StrictHostKeyChecking no" >> /etc/ssh/ssh_config
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/gluon-tricks /opt/gluon-tricks
WORKDIR /opt/gluon-tricks
# Every shared library of the environment resolves here, without the build stage (its bundled
# .libs folders aside, which their modules find by RPATH), but the driver's libcuda.so.1, which
# the NVIDIA Container Toolkit mounts at run time. MXNet's own library is loaded before Horovod's.
RUN mxnet=$(echo /opt/venv/lib/python3*/site-packages/mxnet) \
 && missing=$(find /opt/venv -name '*.so*' -type f -not -path '*.libs/*' -print0 \
      | LD_LIBRARY_PATH=$mxnet xargs -0 ldd 2>/dev/null | grep 'not found' \
      | grep -v 'libcuda\.so\.1' | sort -u || true) \
 && if [ -n "$missing" ]; then \
      echo "libraries missing from the runtime image:" >&2; echo "$missing" >&2; exit 1; \
    fi
# The image's environment: the README's `make demo`/`make test` use it (Makefile: VENV) instead
# of creating .venv.
ENV VENV=/opt/venv \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
CMD ["bash", "-c", "horovodrun --check-build && gluon-tricks --help"]
