"""tokenrelay: an OAuth 2.0 client-credentials grant core (a port of simple-oauth2) and an injecting egress proxy.

The public API of the grant core is re-exported here; the error classes live in :mod:`tokenrelay.errors`.
"""

from __future__ import annotations

from tokenrelay.grant import AccessToken, ClientCredentials, OAuth2Config

__all__ = ["AccessToken", "ClientCredentials", "OAuth2Config", "__version__"]

__version__ = "0.1.0"
