# syntax=docker/dockerfile:1
#
# Perennial: one image for every process (`perennial serve` by default; `perennial train`,
# `perennial bootstrap`, ... as the command). Used by deploy/docker-compose.yml and deploy/k8s.
#
#   docker build -t perennial:latest .
#   docker run --gpus all -p 3000:3000 -p 8001:8001 -v $PWD/.perennial/registry:/var/lib/perennial/registry perennial:latest
#
# GPU: the development machine pins the CPU build of torch (Makefile); this image installs the
# CUDA build instead. Linux x86_64 torch wheels from the default package index are CUDA 12
# builds that bring the CUDA runtime, cuBLAS and cuDNN as pip packages, so the runtime stage
# needs no CUDA base image, only the host's NVIDIA driver, which the NVIDIA container toolkit
# mounts when the container asks for a GPU (`--gpus all`, compose `deploy.resources`, or a
# Kubernetes `nvidia.com/gpu` limit). Pick another CUDA variant with
# `--build-arg TORCH_INDEX_URL=<that variant's wheel index>`. Without a GPU the same image
# serves on CPU (PERENNIAL_DEVICE=auto).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a self-contained virtualenv in /opt/venv --------------------------------------
FROM ${PYTHON_IMAGE} AS build

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first, in its own layer: it is by far the largest and changes least often.
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY training ./training
COPY streaming ./streaming
COPY service ./service
# every Kafka compression codec must be readable by the trainer: fail the build, not the stream
RUN pip install . \
    && python -c "import service.cli, streaming.metrics, training.registry, torch, crc32c; from kafka import codec; assert codec.has_snappy() and codec.has_lz4() and codec.has_zstd(), 'a Kafka codec library is missing'; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# ---- runtime: the virtualenv, a non-root user, nothing to build with ----------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="perennial" \
      org.opencontainers.image.description="A model-serving microservice that keeps learning" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    BENTOML_HOME=/home/perennial/bentoml \
    BENTOML_DO_NOT_TRACK=True \
    PERENNIAL_HOST=0.0.0.0 \
    PERENNIAL_PORT=3000 \
    PERENNIAL_GRPC_PORT=8001 \
    PERENNIAL_METRICS_PORT=9100 \
    PERENNIAL_METRICS_HOST=0.0.0.0 \
    PERENNIAL_DEVICE=auto \
    PERENNIAL_REGISTRY_DIR=/var/lib/perennial/registry \
    PERENNIAL_CHECKPOINT_DIR=/var/lib/perennial/checkpoints

RUN groupadd --system --gid 10001 perennial \
    && useradd --system --uid 10001 --gid perennial --create-home --home-dir /home/perennial \
       --shell /usr/sbin/nologin perennial \
    && mkdir -p /var/lib/perennial/registry /var/lib/perennial/checkpoints \
    && chown -R perennial:perennial /var/lib/perennial

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/perennial

# 3000: HTTP (/predict, /feedback, OIP v2 REST, /metrics); 8001: OIP v2 gRPC;
# 9100: a trainer's /metrics (`perennial train` with PERENNIAL_METRICS_PORT).
EXPOSE 3000 8001 9100

# Ready = a champion of every model is loaded. Containers running another command (the
# trainer) override this check (deploy/docker-compose.yml) or ignore it (Kubernetes probes).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/v2/health/ready', timeout=4)" || exit 1

ENTRYPOINT ["perennial"]
CMD ["serve"]
