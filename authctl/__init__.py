"""authctl: administer, issue and test authentication and authorization for FastAPI apps."""

__version__ = "0.1.0"
