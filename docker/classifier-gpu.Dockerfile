# GPU image for the classifier service (fp16 models on the CUDA execution provider).
#
# Matched pair (keep them together; see shared/inference/README.md):
#   base image      nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04   (CUDA 13.0, cuDNN 9, Python 3.12)
#   onnxruntime-gpu 1.31.1 from PyPI, built against CUDA 13.x and cuDNN 9.x
#                   (its [cuda] and [cudnn] extras name nvidia-cuda-runtime~=13.0 and nvidia-cudnn-cu13~=9.0)
# ONNX Runtime works with any CUDA 13.x minor release but not with CUDA 12 or cuDNN 8.
# The host needs an NVIDIA driver >= 580 (CUDA 13) and the NVIDIA container toolkit.
# TensorRT is not in this image: device=tensorrt fails at start-up naming libnvinfer,
# device=auto skips it with a logged reason. Build: docker build -f docker/classifier-gpu.Dockerfile .
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

ARG ORT_GPU_VERSION=1.31.1
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PATH=/opt/venv/bin:$PATH \
    TW_INFERENCE__DEVICE=cuda

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services services
COPY shared shared
COPY migrations migrations
COPY models models

# The project depends on the CPU `onnxruntime` wheel; both wheels install the same
# `onnxruntime` module, so swap it for the GPU build and check the swap took. Editable, so
# the code finds models/ and migrations/ in /app (a site-packages copy has neither).
RUN pip install --no-cache-dir -e . \
    && pip uninstall -y onnxruntime \
    && pip install --no-cache-dir "onnxruntime-gpu==${ORT_GPU_VERSION}" \
    && python -c "import onnxruntime as o; p = o.get_available_providers(); \
assert 'CUDAExecutionProvider' in p, p; print('onnxruntime-gpu', o.__version__, p)"

USER 65534:65534
ENTRYPOINT ["tonewatch"]
CMD ["run", "classifier"]
