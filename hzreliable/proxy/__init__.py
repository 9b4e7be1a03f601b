"""Hazelcast-compatible import paths (``hzreliable.proxy.reliable_topic``)."""
