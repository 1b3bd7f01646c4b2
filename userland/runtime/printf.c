/*
 * A small printf over seL4_DebugPutChar.
 *
 * Conversions: d i u x X o p s c %; flags - 0 + space #; width and precision (numbers
 * or *); length modifiers hh h l ll z j t. No floating point (the guests are built
 * without an FPU). snprintf/vsnprintf follow C99: the return value is the length the
 * whole output would have had, and the buffer is always NUL-terminated when size > 0.
 */
#include <sel4/sel4.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Where formatted characters go: a buffer (snprintf) or the debug console (printf). */
struct sink {
    char *buf;   /* NULL: the console */
    size_t size; /* buffer capacity including the NUL */
    size_t count;
};

static void emit(struct sink *s, char c)
{
    if (s->buf == NULL) {
        seL4_DebugPutChar(c);
    } else if (s->count + 1 < s->size) {
        s->buf[s->count] = c;
    }
    s->count++;
}

static void emit_repeat(struct sink *s, char c, int n)
{
    for (; n > 0; n--) {
        emit(s, c);
    }
}

enum {
    F_LEFT = 1,  /* '-' */
    F_ZERO = 2,  /* '0' */
    F_PLUS = 4,  /* '+' */
    F_SPACE = 8, /* ' ' */
    F_ALT = 16,  /* '#' */
};

struct spec {
    int flags;
    int width;
    int precision; /* -1: none */
};

static void emit_padded(struct sink *s, const struct spec *sp, const char *prefix,
                        const char *body, int body_len, int zeros)
{
    int prefix_len = (int)strlen(prefix);
    int pad = sp->width - prefix_len - zeros - body_len;
    if (!(sp->flags & F_LEFT) && (sp->flags & F_ZERO) && sp->precision < 0) {
        zeros += pad > 0 ? pad : 0;
        pad = 0;
    }
    if (!(sp->flags & F_LEFT)) {
        emit_repeat(s, ' ', pad);
    }
    for (int i = 0; i < prefix_len; i++) {
        emit(s, prefix[i]);
    }
    emit_repeat(s, '0', zeros);
    for (int i = 0; i < body_len; i++) {
        emit(s, body[i]);
    }
    if (sp->flags & F_LEFT) {
        emit_repeat(s, ' ', pad);
    }
}

/*
 * value in base, with the sign or '#' prefix and precision zeros; prefix (for '#' or %p)
 * is used for nonzero values, or always if force_prefix.
 */
static void emit_number(struct sink *s, const struct spec *sp, unsigned long long value,
                        int negative, unsigned base, int upper, const char *prefix,
                        int force_prefix)
{
    char digits[24];
    int n = 0;
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    unsigned long long v = value;
    /* C: precision 0 with value 0 prints no digits. */
    if (!(v == 0 && sp->precision == 0)) {
        do {
            digits[n++] = set[v % base];
            v /= base;
        } while (v != 0);
    }
    char body[24];
    for (int i = 0; i < n; i++) {
        body[i] = digits[n - 1 - i];
    }
    int zeros = sp->precision > n ? sp->precision - n : 0;
    char sign[4] = {0};
    if (negative) {
        sign[0] = '-';
    } else if (sp->flags & F_PLUS) {
        sign[0] = '+';
    } else if (sp->flags & F_SPACE) {
        sign[0] = ' ';
    } else if (prefix != NULL) {
        /* '#': 0x / 0X for nonzero hex, a leading 0 for octal. */
        if (base == 8 && zeros == 0 && (n == 0 || body[0] != '0')) {
            zeros = 1;
        } else if (base == 16 && (value != 0 || force_prefix)) {
            sign[0] = prefix[0];
            sign[1] = prefix[1];
        }
    }
    emit_padded(s, sp, sign, body, n, zeros);
}

static int parse_int(const char **fmt)
{
    int v = 0;
    while (**fmt >= '0' && **fmt <= '9') {
        v = v * 10 + (**fmt - '0');
        (*fmt)++;
    }
    return v;
}

enum length { L_INT, L_CHAR, L_SHORT, L_LONG, L_LLONG, L_SIZE, L_MAX, L_PTRDIFF };

static int format(struct sink *s, const char *fmt, va_list ap)
{
    while (*fmt) {
        if (*fmt != '%') {
            emit(s, *fmt++);
            continue;
        }
        const char *start = fmt++;
        struct spec sp = {0, 0, -1};
        for (;; fmt++) {
            if (*fmt == '-') {
                sp.flags |= F_LEFT;
            } else if (*fmt == '0') {
                sp.flags |= F_ZERO;
            } else if (*fmt == '+') {
                sp.flags |= F_PLUS;
            } else if (*fmt == ' ') {
                sp.flags |= F_SPACE;
            } else if (*fmt == '#') {
                sp.flags |= F_ALT;
            } else {
                break;
            }
        }
        if (*fmt == '*') {
            fmt++;
            sp.width = va_arg(ap, int);
            if (sp.width < 0) {
                sp.flags |= F_LEFT;
                sp.width = -sp.width;
            }
        } else {
            sp.width = parse_int(&fmt);
        }
        if (*fmt == '.') {
            fmt++;
            if (*fmt == '*') {
                fmt++;
                sp.precision = va_arg(ap, int);
                if (sp.precision < 0) {
                    sp.precision = -1;
                }
            } else {
                sp.precision = parse_int(&fmt);
            }
        }
        enum length len = L_INT;
        switch (*fmt) {
        case 'h':
            fmt++;
            len = L_SHORT;
            if (*fmt == 'h') {
                fmt++;
                len = L_CHAR;
            }
            break;
        case 'l':
            fmt++;
            len = L_LONG;
            if (*fmt == 'l') {
                fmt++;
                len = L_LLONG;
            }
            break;
        case 'z':
            fmt++;
            len = L_SIZE;
            break;
        case 'j':
            fmt++;
            len = L_MAX;
            break;
        case 't':
            fmt++;
            len = L_PTRDIFF;
            break;
        default:
            break;
        }
        char conv = *fmt;
        if (conv == '\0') {
            /* A lone '%' at the end: print what we saw. */
            while (*start) {
                emit(s, *start++);
            }
            break;
        }
        fmt++;
        switch (conv) {
        case 'd':
        case 'i': {
            long long v;
            switch (len) {
            case L_CHAR: v = (signed char)va_arg(ap, int); break;
            case L_SHORT: v = (short)va_arg(ap, int); break;
            case L_LONG: v = va_arg(ap, long); break;
            case L_LLONG: v = va_arg(ap, long long); break;
            case L_SIZE: v = (long long)va_arg(ap, size_t); break;
            case L_MAX: v = va_arg(ap, intmax_t); break;
            case L_PTRDIFF: v = va_arg(ap, ptrdiff_t); break;
            default: v = va_arg(ap, int); break;
            }
            unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            emit_number(s, &sp, mag, v < 0, 10, 0, NULL, 0);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            unsigned long long v;
            switch (len) {
            case L_CHAR: v = (unsigned char)va_arg(ap, unsigned int); break;
            case L_SHORT: v = (unsigned short)va_arg(ap, unsigned int); break;
            case L_LONG: v = va_arg(ap, unsigned long); break;
            case L_LLONG: v = va_arg(ap, unsigned long long); break;
            case L_SIZE: v = va_arg(ap, size_t); break;
            case L_MAX: v = va_arg(ap, uintmax_t); break;
            case L_PTRDIFF: v = (unsigned long long)va_arg(ap, ptrdiff_t); break;
            default: v = va_arg(ap, unsigned int); break;
            }
            unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
            const char *prefix = NULL;
            if (sp.flags & F_ALT) {
                prefix = conv == 'X' ? "0X" : conv == 'x' ? "0x" : "0";
            }
            sp.flags &= ~(F_PLUS | F_SPACE); /* only signed conversions take a sign */
            emit_number(s, &sp, v, 0, base, conv == 'X', prefix, 0);
            break;
        }
        case 'p': {
            /* Always 0x and lowercase hex, also for NULL. */
            uintptr_t v = (uintptr_t)va_arg(ap, void *);
            sp.flags &= ~(F_PLUS | F_SPACE);
            emit_number(s, &sp, v, 0, 16, 0, "0x", 1);
            break;
        }
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (str == NULL) {
                str = "(null)";
            }
            int n = (int)(sp.precision >= 0 ? strnlen(str, (size_t)sp.precision) : strlen(str));
            sp.flags &= ~F_ZERO;
            emit_padded(s, &sp, "", str, n, 0);
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            sp.flags &= ~F_ZERO;
            sp.precision = -1;
            emit_padded(s, &sp, "", &c, 1, 0);
            break;
        }
        case '%':
            emit(s, '%');
            break;
        default:
            /* Unknown conversion: print it as written. */
            while (start < fmt) {
                emit(s, *start++);
            }
            break;
        }
    }
    return (int)s->count;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    char dummy;
    struct sink s = {size ? buf : &dummy, size, 0};
    int n = format(&s, fmt, ap);
    if (size > 0) {
        buf[s.count < size ? s.count : size - 1] = '\0';
    }
    return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int vprintf(const char *fmt, va_list ap)
{
    struct sink s = {NULL, 0, 0};
    return format(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int putchar(int c)
{
    seL4_DebugPutChar((char)c);
    return (unsigned char)c;
}

int puts(const char *str)
{
    for (; *str; str++) {
        seL4_DebugPutChar(*str);
    }
    seL4_DebugPutChar('\n');
    return 0;
}
