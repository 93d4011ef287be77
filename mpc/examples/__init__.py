"""Demo scenarios for multi-party queries: SQL and generated inputs."""
