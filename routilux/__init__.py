"""routilux, event-sourced: a routilux 0.10 compatible workflow framework."""

__version__ = "0.10.0"
