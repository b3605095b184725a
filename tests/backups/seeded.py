"""A registry with one made official seal: the rows, audit entries and key files a backup must carry; and
the signer a backup is signed with (the backup tests and the health page's share it)."""

from __future__ import annotations

from gmpki.gm.sm2 import SM2PrivateKey
from gmpki.keys.signer import SoftwareSigner
from gmpki.pki.ca import DemoCA
from gmpki.pki.certs import Subject
from stamping.registry import SealRegistry
from tests.registry.conftest import PERSON_ID, PIN, UNIT, UNIT_CODE


def make_official_seal(reg: SealRegistry) -> str:
    """Bootstrap the unit's administrator, add its people, apply → review twice → make; the es_id."""
    reg.bootstrap("admin", UNIT, UNIT_CODE, os_login="backup-test-admin")  # the first administrator
    reg.add_person("李四", PERSON_ID, actor="admin")
    for user, role, level, person in (("applicant", "applicant", 0, None),
                                      ("keeper", "keeper", 0, PERSON_ID), ("reviewer1", "reviewer", 1, None),
                                      ("reviewer2", "reviewer", 2, None)):
        reg.add_user(UNIT_CODE, user, role, level=level, person_id_number=person, actor="admin")
    app = reg.apply("applicant", UNIT_CODE, "official", UNIT, keeper="keeper")
    reg.review("reviewer1", app, 1, True)
    reg.review("reviewer2", app, 2, True)
    return reg.make("keeper", app, PIN)


def backup_signer(ca: DemoCA) -> SoftwareSigner:
    """The backup system's signer (a fresh SM2 key, certificate "SealFlow 备份" from ``ca``)."""
    key = SM2PrivateKey.generate()
    return SoftwareSigner(key, ca.issue(Subject("SealFlow 备份"), key.public_key()))
