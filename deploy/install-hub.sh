#!/usr/bin/env bash
# Installs a Canopy hub node (see install.sh --help): same tree, user and checks as a device, with
# canopy-hub.service instead of the agent. Example:
#   sudo ./install-hub.sh --hub-args "--advertise hub1.example.net:7422"
exec "$(dirname "$(readlink -f "$0")")/install.sh" --hub "$@"
