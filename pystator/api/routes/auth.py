"""``GET /api/v1/auth/me`` and API key management (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from pystator.api.deps import Admin, AuditDep, ServicesDep, Viewer
from pystator.api.params import BigInt
from pystator.api.schemas.access import KeyIn, KeyOut, MeOut, NewKeyOut
from pystator.api.schemas.common import PROBLEMS
from pystator.services import api_keys

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=PROBLEMS)


@router.get("/auth/me", response_model=MeOut)
def me(principal: Viewer) -> MeOut:
    """The caller: name, role and how they authenticated."""
    return MeOut(name=principal.name, role=principal.role.value, via=principal.via)


@router.get("/api-keys", response_model=list[KeyOut])
def list_keys(services: ServicesDep, _admin: Admin, include_revoked: bool = False) -> list[KeyOut]:
    """Every key (never its secret)."""
    keys = api_keys.list_keys(services.engine, include_revoked=include_revoked)
    return [KeyOut.model_validate(k) for k in keys]


@router.post("/api-keys", response_model=NewKeyOut, status_code=201)
def create_key(body: KeyIn, services: ServicesDep, _admin: Admin, audit: AuditDep) -> NewKeyOut:
    """Create a key; the response holds it, and nothing else ever will (audited with it)."""
    new = api_keys.create_key(services.engine, role=body.role, name=body.name, by=audit.actor)
    services.auth.forget_keys()
    return NewKeyOut(**KeyOut.model_validate(new.record).model_dump(), key=new.secret)


@router.delete("/api-keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: BigInt, services: ServicesDep, _admin: Admin, audit: AuditDep) -> KeyOut:
    """Revoke a key (other API processes stop accepting it within 5 s; audited with it)."""
    record = api_keys.revoke_key(services.engine, key_id, by=audit.actor)
    services.auth.forget_keys()
    return KeyOut.model_validate(record)
