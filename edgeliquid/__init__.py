"""edgeliquid: compact liquid (CfC) navigation policies, from simulator to drone."""

__version__ = "0.1.0"
