"""Local Kafka and Cassandra from Maven Central jars, for tests and development (not shipped)."""
