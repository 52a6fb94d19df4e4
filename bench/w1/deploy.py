# Workload W1 (issue 7) for pyinfra: the same 20 operations as site.yml
# (10 directories, 5 templates with only {{ var }}, 5 lines ensured), the
# same template files and per-host `root`. A benchmark input, not a test.
from pyinfra import host
from pyinfra.operations import files

root = host.data.root
value = "42"
here = __file__.rsplit("/", 1)[0]

for i in range(1, 11):
    files.directory(name=f"dir {i}", path=f"{root}/d{i}", mode="755")
for i in range(1, 6):
    files.template(
        name=f"template {i}",
        src=f"{here}/templates/t{i}.j2",
        dest=f"{root}/d{i}/t{i}.conf",
        mode="644",
        root=root,
        value=value,
        inventory_hostname=host.name,
    )
for i in range(1, 6):
    files.line(
        name=f"line {i}",
        path=f"{root}/lines.conf",
        line=f"^key{i}=",
        replace=f"key{i}={value}",
    )
