# One image for every role of the service: web (gunicorn), worker, beat, and the fake TTS.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN python manage.py collectstatic --noinput -v 0 \
    && useradd --create-home --uid 10001 app
USER app

EXPOSE 8000
CMD ["gunicorn", "workflow_api.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
