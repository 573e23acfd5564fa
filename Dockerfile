# One image for every service; docker-compose picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONPATH=/app
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY clinic clinic
COPY services services
COPY gateway gateway
RUN useradd --create-home clinic && mkdir -p /app/var && chown clinic /app/var
USER clinic
