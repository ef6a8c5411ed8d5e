"""The policies of the security tests."""

POLICY = """
null_role = "deny"

[roles.operator]
description = "reads and writes unit 1's first registers and coils"
[[roles.operator.allow]]
units = [1]
access = ["read", "write"]
holding_registers = [[0, 49]]
coils = [[0, 15]]

[roles.viewer]
[[roles.viewer.allow]]
units = [1, 2]
access = ["read", "diagnose"]
holding_registers = [[0, 99]]
input_registers = [[0, 99]]
coils = [[0, 99]]
discrete_inputs = [[0, 99]]

[roles.admin]
[[roles.admin.allow]]
units = "*"
access = ["read", "write", "diagnose", "admin", "identify"]
holding_registers = [[0, 65535]]
input_registers = [[0, 65535]]
coils = [[0, 65535]]
discrete_inputs = [[0, 65535]]

[roles."r_long"]
[[roles."r_long".allow]]
units = [1]
access = ["read"]
holding_registers = [[0, 9]]

[roles."Bediener-Ä-東京"]
[[roles."Bediener-Ä-東京".allow]]
units = [1]
access = ["read"]
holding_registers = [[0, 9]]

[roles.guest]
[[roles.guest.allow]]
units = [1]
access = ["read"]
input_registers = [[0, 9]]
""".replace('"r_long"', '"' + "r" * 200 + '"')
