REVOKE INSERT ON audit_leaf_queue FROM auditdb_tenant;
