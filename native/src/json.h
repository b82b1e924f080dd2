// A minimal JSON reader for the helper's configuration. The helper is a small single-threaded
// executable (see helper.cc) and must not pull in a library; the input is written by berth itself.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace berth {

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::map<std::string, Json> o;

  const Json& operator[](const std::string& key) const {
    static const Json null;
    auto it = o.find(key);
    return it == o.end() ? null : it->second;
  }
  bool isNull() const { return kind == Null; }
  std::string str(const std::string& dflt = "") const { return kind == String ? s : dflt; }
  long num(long dflt = 0) const { return kind == Number ? static_cast<long>(n) : dflt; }
  bool truthy() const { return kind == Bool ? b : false; }
  std::vector<std::string> strings() const {
    std::vector<std::string> out;
    for (const auto& e : a) out.push_back(e.s);
    return out;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : t_(text) {}
  // Returns false (and sets error) on malformed input.
  bool parse(Json& out, std::string& error) {
    if (!value(out) || (ws(), i_ != t_.size())) {
      error = "malformed configuration JSON at byte " + std::to_string(i_);
      return false;
    }
    return true;
  }

 private:
  const std::string& t_;
  size_t i_ = 0;

  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\t' || t_[i_] == '\r')) i_++;
  }
  bool lit(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (t_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  static void utf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(unsigned& cp) {
    if (i_ + 4 > t_.size()) return false;
    cp = static_cast<unsigned>(std::stoul(t_.substr(i_, 4), nullptr, 16));
    i_ += 4;
    return true;
  }
  bool string(std::string& out) {
    if (t_[i_] != '"') return false;
    i_++;
    while (i_ < t_.size()) {
      char c = t_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= t_.size()) return false;
      char e = t_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && t_.compare(i_, 2, "\\u") == 0) {
            i_ += 2;
            unsigned lo;
            if (!hex4(lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool value(Json& v) {
    ws();
    if (i_ >= t_.size()) return false;
    char c = t_[i_];
    if (c == '{') {
      v.kind = Json::Object;
      i_++;
      ws();
      if (i_ < t_.size() && t_[i_] == '}') return ++i_, true;
      for (;;) {
        ws();
        std::string key;
        if (i_ >= t_.size() || !string(key)) return false;
        ws();
        if (i_ >= t_.size() || t_[i_++] != ':') return false;
        if (!value(v.o[key])) return false;
        ws();
        if (i_ >= t_.size()) return false;
        if (t_[i_] == ',') { i_++; continue; }
        if (t_[i_] == '}') return ++i_, true;
        return false;
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      i_++;
      ws();
      if (i_ < t_.size() && t_[i_] == ']') return ++i_, true;
      for (;;) {
        v.a.emplace_back();
        if (!value(v.a.back())) return false;
        ws();
        if (i_ >= t_.size()) return false;
        if (t_[i_] == ',') { i_++; continue; }
        if (t_[i_] == ']') return ++i_, true;
        return false;
      }
    }
    if (c == '"') {
      v.kind = Json::String;
      return string(v.s);
    }
    if (lit("true")) { v.kind = Json::Bool; v.b = true; return true; }
    if (lit("false")) { v.kind = Json::Bool; v.b = false; return true; }
    if (lit("null")) { v.kind = Json::Null; return true; }
    size_t start = i_;
    while (i_ < t_.size() && (isdigit(static_cast<unsigned char>(t_[i_])) || t_[i_] == '-' || t_[i_] == '+' || t_[i_] == '.' || t_[i_] == 'e' || t_[i_] == 'E')) i_++;
    if (start == i_) return false;
    v.kind = Json::Number;
    v.n = std::stod(t_.substr(start, i_ - start));
    return true;
  }
};

}  // namespace berth
