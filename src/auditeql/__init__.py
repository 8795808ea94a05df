"""auditeql: Elastic Security EQL detection rules on Linux audit data, anywhere."""

__version__ = "0.1.0"
