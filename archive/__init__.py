"""Electronic archives (电子档案): packages, 四性检测, locked object storage, index, retrieval."""
