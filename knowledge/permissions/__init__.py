"""Document permissions: who may read each indexed document.

At indexing the KnowledgeBase calls a `PermissionPolicy` per file (ACL file rules first,
then the file's mode); the principals it returns are stored with every chunk and searches
filter on them. See README.md in this folder for the ACL file format."""

from knowledge.permissions.acl import AclFile, AclRule, Grant, load_acl_file, parse_acl
from knowledge.permissions.filemode import FileModePermissions
from knowledge.permissions.policy import PermissionExplanation, PermissionPolicy
from knowledge.permissions.principals import group, may_read, parse_principal, user

__all__ = [
    "AclFile",
    "AclRule",
    "FileModePermissions",
    "Grant",
    "PermissionExplanation",
    "PermissionPolicy",
    "group",
    "load_acl_file",
    "may_read",
    "parse_acl",
    "parse_principal",
    "user",
]
