"""pulso: real-time payments and sales intelligence for Brazilian merchants."""

__version__ = "0.1.0"
