# The image compose.yaml runs: both backends and the Locust bench, pinned as `make setup` pins them.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
CMD ["python", "-m", "fastapi_chat.serve", "--host", "0.0.0.0", "--port", "8000"]
