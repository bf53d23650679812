"""ACME (RFC 8555) for `minica serve`: accounts, orders, authorizations and challenges,
kept in the registry's ACME state (registry.AcmeState) so that every process and replica
sharing the registry shares them. The JWS layer is josepy's, the messages are those of
certbot's ``acme`` package, the validator's lookups are dnspython's.
"""
