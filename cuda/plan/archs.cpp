// archs.cpp — see archs.h.
#include "plan/archs.h"

#include <cctype>

namespace flashattn::plan {

namespace {

bool parse_entry(std::string entry, ArchTarget* out) {
  if (entry.rfind("sm_", 0) == 0) entry = entry.substr(3);
  bool ptx_only = false;
  if (entry.rfind("compute_", 0) == 0) {
    entry = entry.substr(8);
    ptx_only = true;
  }
  size_t i = 0;
  int number = 0;
  while (i < entry.size() && std::isdigit(static_cast<unsigned char>(entry[i]))) {
    number = number * 10 + (entry[i++] - '0');
    if (number > 10000) return false;
  }
  if (i == 0 || number < 10) return false;
  ArchTarget a;
  a.major = number / 10;
  a.minor = number % 10;
  if (i < entry.size() && (entry[i] == 'a' || entry[i] == 'f')) a.suffix = entry[i++];
  const std::string rest = entry.substr(i);
  if (rest == "-real") {
    a.ptx = false;
  } else if (rest == "-virtual") {
    a.sass = false;
  } else if (!rest.empty()) {
    return false;
  }
  if (ptx_only) a.sass = false;
  if (!a.sass && !a.ptx) return false;
  const std::string digits = std::to_string(number) + (a.suffix ? std::string(1, a.suffix) : std::string());
  a.label = (a.sass ? "sm_" : "compute_") + digits;
  *out = a;
  return true;
}

}  // namespace

bool parse_arch_list(const std::string& spec, std::vector<ArchTarget>* out, std::string* why) {
  out->clear();
  bool ok = true;
  std::string entry;
  for (size_t i = 0; i <= spec.size(); ++i) {
    const char c = i < spec.size() ? spec[i] : ';';
    if (c == ';' || c == ',' || c == ' ') {
      if (!entry.empty()) {
        ArchTarget a;
        if (parse_entry(entry, &a)) {
          out->push_back(a);
        } else {
          if (ok && why) *why = "cannot read CUDA arch \"" + entry + "\"";
          ok = false;
        }
      }
      entry.clear();
    } else {
      entry += c;
    }
  }
  return ok;
}

bool runs_on(const std::vector<ArchTarget>& archs, int major, int minor, int min_cc) {
  const int cc = major * 10 + minor;
  for (const ArchTarget& a : archs) {
    const int acc = a.major * 10 + a.minor;
    if (acc < min_cc) continue;
    const bool exact = cc == acc;
    const bool family = major == a.major && minor >= a.minor;
    if (a.sass && (a.suffix == 'a' ? exact : family)) return true;
    if (a.ptx && (a.suffix == 'a' ? exact : a.suffix == 'f' ? family : cc >= acc)) return true;
  }
  return false;
}

bool has_arch_specific(const std::vector<ArchTarget>& archs, int major, int minor) {
  for (const ArchTarget& a : archs) {
    if (a.sass && a.suffix == 'a' && a.major == major && a.minor == minor) return true;
  }
  return false;
}

std::string arch_list_text(const std::vector<ArchTarget>& archs) {
  std::string s;
  for (const ArchTarget& a : archs) s += (s.empty() ? "" : ", ") + a.label;
  return s.empty() ? "no CUDA arch" : s;
}

}  // namespace flashattn::plan
