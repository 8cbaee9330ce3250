"""The local sandbox: moto as the AWS control plane, MariaDB as Aurora's data plane, sshd as the
bastion, and a runner standing in for Lambda, all on loopback under .rds-streams/."""
