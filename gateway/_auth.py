"""Who is calling and what they may call: API keys and JWT bearer tokens.

- ``X-API-Key: <key>``: the key's SHA-256 is looked up among the configured digests (keys are
  never stored); each key has scopes.
- ``Authorization: Bearer <jwt>``: HS256 with a shared secret (local use) or RS256 with keys
  from a JWKS URL (Amazon Cognito), fetched and cached by ``jwt.PyJWKClient``. Scopes come from
  the ``scope`` claim (space-separated, OAuth 2.0 / Cognito) or ``scp``.

A scope is an fnmatch pattern over RPC full names: ``*`` allows everything,
``shop.orders.v1.OrderService.*`` one service, ``shop.orders.v1.OrderService.GetOrder`` one
RPC. No or bad credentials -> 401 UNAUTHENTICATED; a valid caller without the scope -> 403
PERMISSION_DENIED. Health, docs and the OpenAPI document never ask for credentials.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import jwt

from gateway._errors import ApiError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.settings import GatewaySettings

__all__ = ["Authenticator", "Caller", "hash_key"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gateway", ApiKey header="X-API-Key"'}


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which an API key is configured."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated (or anonymous, when auth is off) caller."""

    identity: str
    """``key:<name>``, ``jwt:<sub>`` or ``anon:<client address>``: rate limit and cache key."""
    scopes: tuple[str, ...]

    def may_call(self, rpc: str) -> bool:
        """True when a scope pattern matches the RPC full name."""
        return any(fnmatch.fnmatchcase(rpc, scope) for scope in self.scopes)


def _unauthenticated(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, message, headers=dict(_CHALLENGE))


class Authenticator:
    """Checks credentials per request according to the settings."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.required = settings.auth_required
        self._keys = {key.sha256: key for key in settings.api_keys}
        self._secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None

    async def authenticate(self, headers: Mapping[str, str], client: str) -> Caller:
        """The caller behind these headers; ApiError 401 when auth is required and missing."""
        if not self.required:
            return Caller(f"anon:{client}", ("*",))
        api_key = headers.get("x-api-key")
        if api_key:
            found = self._keys.get(hash_key(api_key))
            if found is None:
                raise _unauthenticated("the API key is not valid")
            return Caller(f"key:{found.name}", found.scopes)
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            claims = await self._decode(token.strip())
            return Caller(f"jwt:{claims.get('sub', '')}", _scopes(claims))
        raise _unauthenticated("credentials required: an X-API-Key header or a bearer token")

    async def _decode(self, token: str) -> dict[str, Any]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            key: Any
            if algorithm == "HS256" and self._secret:
                key = self._secret
            elif algorithm == "RS256" and self._jwks is not None:
                # PyJWKClient fetches over blocking urllib (and caches); keep it off the loop.
                key = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            else:
                raise _unauthenticated(f"bearer tokens signed with {algorithm} are not accepted")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "require": ["exp"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.PyJWKClientError as exc:
            raise _unauthenticated(f"bearer token key not found: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthenticated(f"bearer token rejected: {exc}") from None
        return claims

    @staticmethod
    def authorize(caller: Caller, rpc: str) -> None:
        """ApiError 403 unless the caller has a scope for ``rpc``."""
        if not caller.may_call(rpc):
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{caller.identity} has no scope allowing {rpc}",
            )


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return tuple(raw.split())
    if isinstance(raw, list):
        return tuple(str(item) for item in raw)
    return ()
