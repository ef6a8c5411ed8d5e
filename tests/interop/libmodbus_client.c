/*
 * A tiny libmodbus client for the trio_modbus interop tests.
 *
 * usage: libmodbus_client tcp HOST PORT UNIT COMMAND...
 *        libmodbus_client rtu DEVICE BAUD UNIT COMMAND...
 *
 * Each COMMAND is run in order and prints one line:
 *   OK <name> <value> <value> ...      (decimal values; report_slave_id prints hex bytes)
 *   ERR <name> <errno> <message>
 * Commands (addresses are protocol addresses, lists are comma separated):
 *   read_bits:ADDR:N              FC 01
 *   read_input_bits:ADDR:N        FC 02
 *   read_registers:ADDR:N         FC 03
 *   read_input_registers:ADDR:N   FC 04
 *   write_bit:ADDR:V              FC 05
 *   write_register:ADDR:V         FC 06
 *   write_bits:ADDR:V,V,...       FC 15
 *   write_registers:ADDR:V,V,...  FC 16
 *   report_slave_id               FC 17
 *   mask_write_register:ADDR:AND:OR                  FC 22
 *   write_and_read_registers:WADDR:V,V,...:RADDR:N   FC 23
 * The exit status is 0 when every command succeeded, 1 otherwise, 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <modbus.h>

#define MAX_VALUES 260

static int parse_list(char *text, uint16_t *out) {
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, ",", &save); tok != NULL && n < MAX_VALUES;
         tok = strtok_r(NULL, ",", &save)) {
        out[n++] = (uint16_t)strtoul(tok, NULL, 0);
    }
    return n;
}

static void print_u16(const char *name, const uint16_t *values, int n) {
    printf("OK %s", name);
    for (int i = 0; i < n; i++) printf(" %u", values[i]);
    printf("\n");
}

static void print_u8(const char *name, const uint8_t *values, int n) {
    printf("OK %s", name);
    for (int i = 0; i < n; i++) printf(" %u", values[i]);
    printf("\n");
}

static int run(modbus_t *ctx, char *command) {
    char *save = NULL;
    char *name = strtok_r(command, ":", &save);
    char *args[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) args[i] = strtok_r(NULL, ":", &save);
    uint16_t regs[MAX_VALUES], regs2[MAX_VALUES];
    uint8_t bits[MAX_VALUES * 8];
    int rc = -1;
    if (name == NULL) return -1;
#define ARG(i) (args[i] ? (int)strtol(args[i], NULL, 0) : 0)
    if (strcmp(name, "read_bits") == 0 || strcmp(name, "read_input_bits") == 0) {
        rc = name[5] == 'b' ? modbus_read_bits(ctx, ARG(0), ARG(1), bits)
                            : modbus_read_input_bits(ctx, ARG(0), ARG(1), bits);
        if (rc >= 0) print_u8(name, bits, rc);
    } else if (strcmp(name, "read_registers") == 0) {
        rc = modbus_read_registers(ctx, ARG(0), ARG(1), regs);
        if (rc >= 0) print_u16(name, regs, rc);
    } else if (strcmp(name, "read_input_registers") == 0) {
        rc = modbus_read_input_registers(ctx, ARG(0), ARG(1), regs);
        if (rc >= 0) print_u16(name, regs, rc);
    } else if (strcmp(name, "write_bit") == 0) {
        rc = modbus_write_bit(ctx, ARG(0), ARG(1));
        if (rc >= 0) printf("OK %s %d\n", name, rc);
    } else if (strcmp(name, "write_register") == 0) {
        rc = modbus_write_register(ctx, ARG(0), (uint16_t)ARG(1));
        if (rc >= 0) printf("OK %s %d\n", name, rc);
    } else if (strcmp(name, "write_bits") == 0 && args[1] != NULL) {
        int n = parse_list(args[1], regs);
        for (int i = 0; i < n; i++) bits[i] = regs[i] ? 1 : 0;
        rc = modbus_write_bits(ctx, ARG(0), n, bits);
        if (rc >= 0) printf("OK %s %d\n", name, rc);
    } else if (strcmp(name, "write_registers") == 0 && args[1] != NULL) {
        int n = parse_list(args[1], regs);
        rc = modbus_write_registers(ctx, ARG(0), n, regs);
        if (rc >= 0) printf("OK %s %d\n", name, rc);
    } else if (strcmp(name, "mask_write_register") == 0) {
        rc = modbus_mask_write_register(ctx, ARG(0), (uint16_t)ARG(1), (uint16_t)ARG(2));
        if (rc >= 0) printf("OK %s %d\n", name, rc);
    } else if (strcmp(name, "write_and_read_registers") == 0 && args[1] != NULL) {
        int n = parse_list(args[1], regs);
        rc = modbus_write_and_read_registers(ctx, ARG(0), n, regs, ARG(2), ARG(3), regs2);
        if (rc >= 0) print_u16(name, regs2, rc);
    } else if (strcmp(name, "report_slave_id") == 0) {
        rc = modbus_report_slave_id(ctx, (int)sizeof(bits), bits);
        if (rc >= 0) {
            printf("OK %s ", name);
            for (int i = 0; i < rc; i++) printf("%02x", bits[i]);
            printf("\n");
        }
    } else {
        printf("ERR %s 0 unknown command\n", name);
        return -1;
    }
#undef ARG
    if (rc < 0) printf("ERR %s %d %s\n", name, errno, modbus_strerror(errno));
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s tcp HOST PORT UNIT CMD... | rtu DEVICE BAUD UNIT CMD...\n",
                argv[0]);
        return 2;
    }
    modbus_t *ctx = NULL;
    if (strcmp(argv[1], "tcp") == 0) {
        ctx = modbus_new_tcp(argv[2], atoi(argv[3]));
    } else if (strcmp(argv[1], "rtu") == 0) {
        ctx = modbus_new_rtu(argv[2], atoi(argv[3]), 'N', 8, 1);
    }
    if (ctx == NULL) {
        fprintf(stderr, "cannot create the context: %s\n", modbus_strerror(errno));
        return 2;
    }
    modbus_set_slave(ctx, atoi(argv[4]));
    modbus_set_response_timeout(ctx, 3, 0);
    if (modbus_connect(ctx) == -1) {
        printf("ERR connect %d %s\n", errno, modbus_strerror(errno));
        modbus_free(ctx);
        return 1;
    }
    int failed = 0;
    for (int i = 5; i < argc; i++) {
        if (run(ctx, argv[i]) < 0) failed = 1;
    }
    modbus_close(ctx);
    modbus_free(ctx);
    return failed;
}
