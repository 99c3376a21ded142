"""Operations: logging set-up, health and readiness (/healthz, /readyz) and Prometheus metrics."""
