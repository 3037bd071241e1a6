"""The web login: credentials in, a token with who it belongs to out."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class LoginUser(BaseModel):
    id: int
    email: str
    name: str | None = None
    role: str


class LoginOrganization(BaseModel):
    id: int
    name: str


class LoginPublic(BaseModel):
    token: str = Field(description="a Bearer token for the API and the socket, shown once")
    token_id: int
    user: LoginUser
    organization: LoginOrganization
