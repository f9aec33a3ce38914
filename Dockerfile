# The DermLabel app (HTTP layer + CLI). Migrations are applied by the official Flyway image in docker-compose.
FROM python:3.11-slim
WORKDIR /srv/dermlabel
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir .
COPY web ./web
COPY db ./db
COPY flyway.conf ./
RUN useradd --system --no-create-home dermlabel
USER dermlabel
EXPOSE 8000
CMD ["python", "-m", "app", "serve"]
