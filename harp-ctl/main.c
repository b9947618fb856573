/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* harp-ctl: `serve` runs the control plane; every other command is the operators' CLI. */
#include "config.h"

#include "cli.h"

int
main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
