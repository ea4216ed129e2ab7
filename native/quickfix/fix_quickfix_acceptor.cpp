// fix-quickfix-acceptor: a QuickFIX (Debian's libquickfix, C++) acceptor as fix-tcp's counterparty, so the
// session layer is tested against a FIX engine used across the industry, not only against our own.
// Acks every NewOrderSingle (35=D) with an ExecutionReport (35=8, ExecType/OrdStatus New) and fills every
// Nth; the others rest: OrderCancelRequest (F) cancels, OrderCancelReplaceRequest (G) replaces (the order then under
// the new ClOrdID), OrderStatusRequest (H) reports its status; a request for an order not resting gets an
// OrderCancelReject (9) or a status of Rejected; other application messages a BusinessMessageReject (j). Sessions SENDER→TARGET for FIX.4.4, FIX.4.2 and FIXT.1.1 (FIX 5.0 SP2 as the default ApplVerID), no data
// dictionary (Debian ships none), sequence numbers in a QuickFIX FileStore (kept across restarts of either side);
// with --username/--password, a Logon without those Username(553)/Password(554) is refused (RejectLogon: a Logout
// with Text, then the disconnect), as a venue's gateway does. stdout: one JSON line per event
// ({"event":...,"tool":"fix-quickfix-acceptor","ts":...,"data":{...}}); errors on stderr.
#include <quickfix/Application.h>
#include <quickfix/FileLog.h>
#include <quickfix/FileStore.h>
#include <quickfix/Message.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

const char TOOL[] = "fix-quickfix-acceptor";

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

/** The data object of one event, built field by field. */
class JsonObject {
 public:
  JsonObject& str(const char* key, const std::string& value) { return raw(key, jsonString(value)); }
  JsonObject& num(const char* key, long long value) { return raw(key, std::to_string(value)); }
  JsonObject& boolean(const char* key, bool value) { return raw(key, value ? "true" : "false"); }
  JsonObject& raw(const char* key, const std::string& json) {
    body_ += (body_.empty() ? "" : ",") + jsonString(key) + ":" + json;
    return *this;
  }
  std::string text() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

std::mutex stdoutMutex;

void emit(const char* event, const JsonObject& data) {
  double ts = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%.3f", ts);
  std::string line = std::string("{\"event\":") + jsonString(event) + ",\"tool\":" + jsonString(TOOL) + ",\"ts\":" + stamp +
                     ",\"data\":" + data.text() + "}\n";
  std::lock_guard<std::mutex> lock(stdoutMutex);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

std::string field(const FIX::FieldMap& map, int tag) {
  return map.isSetField(tag) ? map.getField(tag) : std::string();
}

struct Options {
  int port = 9878;
  std::string store;
  std::string log;
  std::string sender = "EXCH";
  std::vector<std::string> targets;
  long fillEvery = 1;
  double testRequestAfter = 0;
  long testGapAt = 0;
  /** Required Username(553) and Password(554) on the Logon; empty: not checked. */
  std::string username;
  std::string password;
  /** Poll the sockets without a timeout in a loop (Acceptor::poll(0)) instead of QuickFIX's thread blocking in select(). */
  bool busyPoll = false;
};

/** Per session, under Acceptor::mutex_. */
struct SessionRecord {
  std::chrono::steady_clock::time_point logonAt;
  bool loggedOn = false;
  bool testRequestSent = false;
  long heartBtInt = 0;
  bool resetOnLogon = false;
  std::string logoutInText;
  std::string logoutOutText;
  bool logoutSent = false;
  bool logoutReceivedFirst = false;
};

/** An order acked and not filled: cancel and cancel/replace find it by ClOrdID. */
struct RestingOrder {
  std::string orderId;
  std::string symbol;
  std::string side;
  std::string qty;
  std::string price;
};

class Acceptor : public FIX::Application {
 public:
  explicit Acceptor(const Options& options) : options_(options) {}

  void onCreate(const FIX::SessionID&) override {}

  void onLogon(const FIX::SessionID& id) override {
    FIX::Session* session = FIX::Session::lookupSession(id);
    SessionRecord record;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      SessionRecord& r = sessions_[id];
      r.loggedOn = true;
      r.logonAt = std::chrono::steady_clock::now();
      r.testRequestSent = false;
      record = r;
    }
    JsonObject data;
    describe(data, id);
    data.num("heartBtInt", record.heartBtInt).boolean("reset", record.resetOnLogon);
    if (session != nullptr) data.num("nextSenderSeq", session->getExpectedSenderNum()).num("nextTargetSeq", session->getExpectedTargetNum());
    emit("logon", data);
  }

  void onLogout(const FIX::SessionID& id) override {
    FIX::Session* session = FIX::Session::lookupSession(id);
    SessionRecord record;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      SessionRecord& r = sessions_[id];
      record = r;
      r = SessionRecord();
    }
    JsonObject data;
    describe(data, id);
    const char* initiatedBy = record.logoutReceivedFirst ? "peer" : record.logoutSent ? "us" : "disconnect";
    data.str("initiatedBy", initiatedBy);
    if (!record.logoutInText.empty()) data.str("textReceived", record.logoutInText);
    if (!record.logoutOutText.empty()) data.str("textSent", record.logoutOutText);
    if (session != nullptr) data.num("nextSenderSeq", session->getExpectedSenderNum()).num("nextTargetSeq", session->getExpectedTargetNum());
    emit("logout", data);
  }

  void toAdmin(FIX::Message& message, const FIX::SessionID& id) override {
    adminEvent("out", message, id);
  }

  void fromAdmin(const FIX::Message& message, const FIX::SessionID& id)
      throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::RejectLogon) override {
    adminEvent("in", message, id);
    if (field(message.getHeader(), FIX::FIELD::MsgType) == "A") checkCredentials(message, id);
  }

  void toApp(FIX::Message& message, const FIX::SessionID& id) throw(FIX::DoNotSend) override {
    const std::string type = field(message.getHeader(), FIX::FIELD::MsgType);
    if (type == "8" || type == "9") return;  // reports and cancel rejects have their own events
    JsonObject data;
    describe(data, id);
    data.str("msgType", type).num("refSeqNum", std::atoll(field(message, FIX::FIELD::RefSeqNum).c_str())).str("text", field(message, FIX::FIELD::Text));
    emit("app-out", data);
  }

  void fromApp(const FIX::Message& message, const FIX::SessionID& id)
      throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::UnsupportedMessageType) override {
    const std::string type = field(message.getHeader(), FIX::FIELD::MsgType);
    if (type == "D") newOrder(message, id);
    else if (type == "F" || type == "G") amend(message, id, type == "G");
    else if (type == "H") status(message, id);
    else throw FIX::UnsupportedMessageType();  // QuickFIX answers with a BusinessMessageReject
  }

  /** Acked; filled at once every --fill-every'th, else resting until canceled or replaced. */
  void newOrder(const FIX::Message& message, const FIX::SessionID& id) {
    const auto handedAt = std::chrono::steady_clock::now();
    // getField throws FieldNotFound for a missing tag: QuickFIX answers with a Reject (Required tag missing).
    const std::string clOrdId = message.getField(FIX::FIELD::ClOrdID);
    RestingOrder order;
    order.symbol = message.getField(FIX::FIELD::Symbol);
    order.side = message.getField(FIX::FIELD::Side);
    order.qty = message.getField(FIX::FIELD::OrderQty);
    order.price = field(message, FIX::FIELD::Price);
    const bool fix42 = id.getBeginString() == FIX::BeginString_FIX42;
    const long long n = ++orders_;
    order.orderId = "O" + std::to_string(n);

    skipOutgoingSeqIfDue(id);
    FIX::Message ack = executionReport(fix42, order, clOrdId, "0", "0");
    ack.setField(FIX::FIELD::LeavesQty, order.qty);
    FIX::Session::sendToTarget(ack, id);
    recordAckTime(std::chrono::steady_clock::now() - handedAt);
    bool filled = options_.fillEvery > 0 && n % options_.fillEvery == 0;
    if (filled) {
      const std::string px = order.price.empty() ? "0" : order.price;
      FIX::Message fill = executionReport(fix42, order, clOrdId, fix42 ? "2" : "F", "2");
      fill.setField(FIX::FIELD::LastQty, order.qty);
      fill.setField(FIX::FIELD::LastPx, px);
      fill.setField(FIX::FIELD::LeavesQty, "0");
      fill.setField(FIX::FIELD::CumQty, order.qty);
      fill.setField(FIX::FIELD::AvgPx, px);
      FIX::Session::sendToTarget(fill, id);
    } else {
      std::lock_guard<std::mutex> lock(mutex_);
      book_[{id, clOrdId}] = order;
    }
    JsonObject data;
    describe(data, id);
    data.num("seq", std::atoll(field(message.getHeader(), FIX::FIELD::MsgSeqNum).c_str()))
        .str("clOrdId", clOrdId)
        .str("orderId", order.orderId)
        .str("symbol", order.symbol)
        .str("side", order.side)
        .str("qty", order.qty)
        .str("price", order.price)
        .boolean("filled", filled);
    emit("order", data);
  }

  /** OrderCancelRequest, OrderCancelReplaceRequest: a resting order canceled or replaced, else an OrderCancelReject. */
  void amend(const FIX::Message& message, const FIX::SessionID& id, bool replace) {
    const std::string clOrdId = message.getField(FIX::FIELD::ClOrdID);
    const std::string origClOrdId = message.getField(FIX::FIELD::OrigClOrdID);
    const bool fix42 = id.getBeginString() == FIX::BeginString_FIX42;
    RestingOrder order;
    bool found = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = book_.find({id, origClOrdId});
      if (it != book_.end()) {
        found = true;
        order = it->second;
        book_.erase(it);
        if (replace) {
          if (message.isSetField(FIX::FIELD::OrderQty)) order.qty = message.getField(FIX::FIELD::OrderQty);
          if (message.isSetField(FIX::FIELD::Price)) order.price = message.getField(FIX::FIELD::Price);
          book_[{id, clOrdId}] = order;
        }
      }
    }
    JsonObject data;
    describe(data, id);
    data.str("clOrdId", clOrdId).str("origClOrdId", origClOrdId);
    if (!found) {
      FIX::Message reject;
      reject.getHeader().setField(FIX::MsgType("9"));
      reject.setField(FIX::FIELD::OrderID, "NONE");
      reject.setField(FIX::FIELD::ClOrdID, clOrdId);
      reject.setField(FIX::FIELD::OrigClOrdID, origClOrdId);
      reject.setField(FIX::FIELD::OrdStatus, "8");
      reject.setField(FIX::FIELD::CxlRejResponseTo, replace ? "2" : "1");
      reject.setField(FIX::FIELD::CxlRejReason, "1");
      reject.setField(FIX::FIELD::Text, "Unknown order");
      FIX::Session::sendToTarget(reject, id);
      emit("cancel-reject", data.str("request", replace ? "replace" : "cancel"));
      return;
    }
    FIX::Message report = executionReport(fix42, order, clOrdId, replace ? "5" : "4", replace ? "0" : "4");
    report.setField(FIX::FIELD::OrigClOrdID, origClOrdId);
    report.setField(FIX::FIELD::LeavesQty, replace ? order.qty : "0");
    FIX::Session::sendToTarget(report, id);
    emit(replace ? "replace" : "cancel", data.str("qty", order.qty).str("price", order.price));
  }

  /** OrderStatusRequest: the resting order's status (ExecType I; FIX.4.2: ExecTransType Status), Rejected if none. */
  void status(const FIX::Message& message, const FIX::SessionID& id) {
    const std::string clOrdId = message.getField(FIX::FIELD::ClOrdID);
    const bool fix42 = id.getBeginString() == FIX::BeginString_FIX42;
    RestingOrder order;
    bool found = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = book_.find({id, clOrdId});
      if (it != book_.end()) {
        found = true;
        order = it->second;
      }
    }
    if (!found) {
      order.orderId = "NONE";
      order.symbol = field(message, FIX::FIELD::Symbol);
      order.side = field(message, FIX::FIELD::Side);
      order.qty = "0";
    }
    const char* ordStatus = found ? "0" : "8";
    FIX::Message report = executionReport(fix42, order, clOrdId, fix42 ? ordStatus : "I", ordStatus);
    if (fix42) report.setField(FIX::FIELD::ExecTransType, "3");
    report.setField(FIX::FIELD::LeavesQty, found ? order.qty : "0");
    FIX::Session::sendToTarget(report, id);
    JsonObject data;
    describe(data, id);
    emit("status", data.str("clOrdId", clOrdId).boolean("found", found));
  }

  /** Main thread: the --test-request-after hook. */
  void tick() {
    if (options_.testRequestAfter <= 0) return;
    std::vector<FIX::SessionID> due;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto now = std::chrono::steady_clock::now();
      for (auto& entry : sessions_) {
        SessionRecord& r = entry.second;
        if (!r.loggedOn || r.testRequestSent) continue;
        if (std::chrono::duration<double>(now - r.logonAt).count() < options_.testRequestAfter) continue;
        r.testRequestSent = true;
        due.push_back(entry.first);
      }
    }
    // Sent outside mutex_: QuickFIX calls back into toAdmin with its session lock held.
    for (const FIX::SessionID& id : due) {
      FIX::Message request;
      request.getHeader().setField(FIX::MsgType("1"));
      request.setField(FIX::FIELD::TestReqID, "QF" + std::to_string(++testRequests_));
      FIX::Session::sendToTarget(request, id);
    }
  }

  long long orders() const { return orders_; }

 private:
  /** --username/--password: the Logon must carry them (the values never reach stdout, only whether they matched). */
  void checkCredentials(const FIX::Message& logon, const FIX::SessionID& id) {
    if (options_.username.empty() && options_.password.empty()) return;
    const bool userOk = options_.username.empty() || field(logon, FIX::FIELD::Username) == options_.username;
    const bool passwordOk = options_.password.empty() || field(logon, FIX::FIELD::Password) == options_.password;
    JsonObject data;
    describe(data, id);
    data.boolean("usernameGiven", logon.isSetField(FIX::FIELD::Username)).boolean("passwordGiven", logon.isSetField(FIX::FIELD::Password));
    data.boolean("accepted", userOk && passwordOk);
    if (logon.getHeader().isSetField(FIX::FIELD::SenderSubID)) data.str("senderSubId", logon.getHeader().getField(FIX::FIELD::SenderSubID));
    if (logon.isSetField(FIX::FIELD::DefaultApplVerID)) data.str("defaultApplVerId", logon.getField(FIX::FIELD::DefaultApplVerID));
    if (logon.isSetField(FIX::FIELD::RawData)) data.num("rawDataLength", static_cast<long long>(logon.getField(FIX::FIELD::RawData).size()));
    emit("credentials", data);
    if (!(userOk && passwordOk)) throw FIX::RejectLogon("Invalid username or password");
  }

  /** --test-gap-at: the ExecutionReport that would carry this MsgSeqNum takes the next one (once). */
  void skipOutgoingSeqIfDue(const FIX::SessionID& id) {
    if (options_.testGapAt <= 0 || gapSkipped_) return;
    FIX::Session* session = FIX::Session::lookupSession(id);
    if (session == nullptr || session->getExpectedSenderNum() != options_.testGapAt) return;
    session->setNextSenderMsgSeqNum(static_cast<int>(options_.testGapAt + 1));
    gapSkipped_ = true;
    JsonObject data;
    describe(data, id);
    data.num("skipped", options_.testGapAt);
    emit("test-gap", data);
  }

  static void describe(JsonObject& data, const FIX::SessionID& id) {
    data.str("beginString", id.getBeginString()).str("sender", id.getSenderCompID()).str("target", id.getTargetCompID());
  }

  static FIX::Message executionReport(bool fix42, const RestingOrder& order, const std::string& clOrdId, const char* execType, const char* ordStatus) {
    static std::atomic<long long> execs{0};
    FIX::Message report;
    report.getHeader().setField(FIX::MsgType("8"));
    report.setField(FIX::FIELD::OrderID, order.orderId);
    report.setField(FIX::FIELD::ExecID, "E" + std::to_string(++execs));
    if (fix42) report.setField(FIX::FIELD::ExecTransType, "0");
    report.setField(FIX::FIELD::ClOrdID, clOrdId);
    report.setField(FIX::FIELD::Symbol, order.symbol);
    report.setField(FIX::FIELD::Side, order.side);
    report.setField(FIX::FIELD::OrderQty, order.qty);
    report.setField(FIX::FIELD::OrdType, "2");
    if (!order.price.empty()) report.setField(FIX::FIELD::Price, order.price);
    report.setField(FIX::FIELD::ExecType, execType);
    report.setField(FIX::FIELD::OrdStatus, ordStatus);
    report.setField(FIX::FIELD::CumQty, "0");
    report.setField(FIX::FIELD::AvgPx, "0");
    return report;
  }

  void adminEvent(const char* direction, const FIX::Message& message, const FIX::SessionID& id) {
    const FIX::Header& header = message.getHeader();
    const std::string type = field(header, FIX::FIELD::MsgType);
    const bool in = direction[0] == 'i';
    {
      std::lock_guard<std::mutex> lock(mutex_);
      SessionRecord& r = sessions_[id];
      if (type == "A" && in) {
        r.heartBtInt = std::atol(field(message, FIX::FIELD::HeartBtInt).c_str());
        r.resetOnLogon = field(message, FIX::FIELD::ResetSeqNumFlag) == "Y";
      } else if (type == "5" && in) {
        if (!r.logoutSent) r.logoutReceivedFirst = true;
        r.logoutInText = field(message, FIX::FIELD::Text);
      } else if (type == "5") {
        r.logoutSent = true;
        r.logoutOutText = field(message, FIX::FIELD::Text);
      }
    }
    JsonObject data;
    describe(data, id);
    data.str("direction", direction).str("msgType", type).num("seq", std::atoll(field(header, FIX::FIELD::MsgSeqNum).c_str()));
    const int tags[] = {FIX::FIELD::TestReqID, FIX::FIELD::Text, FIX::FIELD::RefSeqNum, FIX::FIELD::SessionRejectReason, FIX::FIELD::BeginSeqNo,
                        FIX::FIELD::EndSeqNo, FIX::FIELD::NewSeqNo, FIX::FIELD::GapFillFlag, FIX::FIELD::HeartBtInt, FIX::FIELD::ResetSeqNumFlag};
    const char* names[] = {"testReqId", "text", "refSeqNum", "sessionRejectReason", "beginSeqNo", "endSeqNo", "newSeqNo", "gapFill", "heartBtInt", "resetSeqNumFlag"};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
      if (message.isSetField(tags[i])) data.str(names[i], message.getField(tags[i]));
    }
    if (header.isSetField(FIX::FIELD::PossDupFlag)) data.str("possDup", header.getField(FIX::FIELD::PossDupFlag));
    emit("admin", data);
  }

  const Options options_;
  std::mutex mutex_;
  std::map<FIX::SessionID, SessionRecord> sessions_;
  /** Resting orders (not filled, not canceled) by session and ClOrdID. */
  std::map<std::pair<FIX::SessionID, std::string>, RestingOrder> book_;
  /**
   * Per order: QuickFIX hands it to fromApp (read and parsed) → its ack written to the socket, ns; the
   * acceptor's share of fix-tcp's wireToRx, less QuickFIX's read and parse.
   */
  void recordAckTime(std::chrono::steady_clock::duration d) {
    std::lock_guard<std::mutex> lock(timesMutex_);
    if (ackTimesNs_.size() < 4000000) ackTimesNs_.push_back(static_cast<uint32_t>(std::min<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(), UINT32_MAX)));
  }

 public:
  /** {"count","p50","p90","p99","max"} of the ack times, µs. */
  std::string ackTimesJson() {
    std::lock_guard<std::mutex> lock(timesMutex_);
    std::vector<uint32_t> v = ackTimesNs_;
    std::sort(v.begin(), v.end());
    auto at = [&](double p) { return v.empty() ? 0.0 : v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)] / 1000.0; };
    char out[160];
    std::snprintf(out, sizeof out, "{\"count\":%zu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}", v.size(), at(0.5), at(0.9), at(0.99), v.empty() ? 0.0 : v.back() / 1000.0);
    return out;
  }

 private:
  std::mutex timesMutex_;
  std::vector<uint32_t> ackTimesNs_;
  std::atomic<long long> orders_{0};
  std::atomic<long long> testRequests_{0};
  bool gapSkipped_ = false;
};

volatile std::sig_atomic_t stopSignal = 0;

void onSignal(int signal) { stopSignal = signal; }

[[noreturn]] void usage(const char* error) {
  std::fprintf(stderr,
               "%s%s%s"
               "usage: fix-quickfix-acceptor --store DIR [--port 9878] [--sender EXCH] [--target CLIENT1]... [--fill-every 1]\n"
               "                             [--log DIR] [--test-request-after S] [--test-gap-at SEQ] [--username U --password P]\n"
               "                             [--busy-poll]\n"
               "  A QuickFIX acceptor (sessions SENDER->TARGET, FIX.4.4, FIX.4.2 and FIXT.1.1 with FIX 5.0 SP2, no data\n"
               "  dictionary) that acks every NewOrderSingle with an ExecutionReport and fills every Nth (0 = never); orders\n"
               "  not filled rest and can be canceled (35=F), replaced (35=G) and asked about (35=H).\n"
               "  --username U, --password P  refuse a Logon without Username(553)=U / Password(554)=P (test bed only:\n"
               "                           values on argv)\n"
               "  --store DIR              QuickFIX FileStorePath: sequence numbers and sent messages, kept across restarts\n"
               "  --log DIR                QuickFIX FileLogPath: messages and session events (default: no log)\n"
               "  --target ID              a counterparty's SenderCompID; may be repeated\n"
               "  --test-request-after S   test hook: send one TestRequest S seconds after each Logon\n"
               "  --test-gap-at SEQ        test hook: skip this outgoing MsgSeqNum once (taken by an ExecutionReport)\n"
               "  --busy-poll              spin: poll the sockets without a timeout instead of blocking in select()\n"
               "  JSON lines on stdout: start, logon, order, admin (each session-level message in or out), app-out\n"
               "  (a BusinessMessageReject), test-gap, logout, end.\n",
               error == nullptr ? "" : "fix-quickfix-acceptor: ", error == nullptr ? "" : error, error == nullptr ? "" : "\n");
  std::exit(error == nullptr ? 0 : 2);
}

long parseLong(const char* flag, const char* value, long min, long max) {
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || n < min || n > max) {
    std::string error = std::string(flag) + ": expected an integer in " + std::to_string(min) + ".." + std::to_string(max) + ", got '" + value + "'";
    usage(error.c_str());
  }
  return n;
}

Options parseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; i++) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage(nullptr);
    if (flag == "--busy-poll") {
      options.busyPoll = true;
      continue;
    }
    if (i + 1 >= argc) usage((flag + ": missing value (or unknown option)").c_str());
    const char* value = argv[++i];
    if (flag == "--port") options.port = static_cast<int>(parseLong("--port", value, 1, 65535));
    else if (flag == "--store") options.store = value;
    else if (flag == "--log") options.log = value;
    else if (flag == "--sender") options.sender = value;
    else if (flag == "--target") options.targets.push_back(value);
    else if (flag == "--fill-every") options.fillEvery = parseLong("--fill-every", value, 0, 1000000000);
    else if (flag == "--test-gap-at") options.testGapAt = parseLong("--test-gap-at", value, 1, 2000000000);
    else if (flag == "--username") options.username = value;
    else if (flag == "--password") options.password = value;
    else if (flag == "--test-request-after") options.testRequestAfter = static_cast<double>(parseLong("--test-request-after", value, 0, 3600));
    else usage(("unknown option " + flag).c_str());
  }
  if (options.store.empty()) usage("--store DIR is required (QuickFIX FileStorePath)");
  if (options.targets.empty()) options.targets.push_back("CLIENT1");
  return options;
}

FIX::SessionSettings settingsFor(const Options& options) {
  FIX::SessionSettings settings;
  FIX::Dictionary defaults;
  defaults.setString(FIX::CONNECTION_TYPE, "acceptor");
  defaults.setInt(FIX::SOCKET_ACCEPT_PORT, options.port);
  defaults.setBool(FIX::SOCKET_REUSE_ADDRESS, true);
  defaults.setBool(FIX::SOCKET_NODELAY, true);
  defaults.setString(FIX::FILE_STORE_PATH, options.store);
  if (!options.log.empty()) defaults.setString(FIX::FILE_LOG_PATH, options.log);
  defaults.setBool(FIX::USE_DATA_DICTIONARY, false);  // Debian ships no FIX44.xml
  defaults.setString(FIX::START_TIME, "00:00:00");    // equal start and end: a session that never ends
  defaults.setString(FIX::END_TIME, "00:00:00");
  settings.set(defaults);
  for (const std::string& target : options.targets) {
    for (const char* beginString : {FIX::BeginString_FIX44, FIX::BeginString_FIX42, FIX::BeginString_FIXT11}) {
      FIX::Dictionary session;
      // FIXT.1.1 carries FIX 5.0 SP2 application messages (the counterparty's DefaultApplVerID on its Logon)
      if (std::string(beginString) == FIX::BeginString_FIXT11) session.setString(FIX::DEFAULT_APPLVERID, "FIX.5.0SP2");
      settings.set(FIX::SessionID(beginString, options.sender, target), session);
    }
  }
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parseOptions(argc, argv);
  try {
    FIX::SessionSettings settings = settingsFor(options);
    Acceptor application(options);
    FIX::FileStoreFactory storeFactory(settings);
    std::unique_ptr<FIX::LogFactory> logFactory;
    if (!options.log.empty()) logFactory.reset(new FIX::FileLogFactory(settings));
    std::unique_ptr<FIX::SocketAcceptor> acceptor(logFactory ? new FIX::SocketAcceptor(application, storeFactory, settings, *logFactory)
                                                             : new FIX::SocketAcceptor(application, storeFactory, settings));
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    if (!options.busyPoll) acceptor->start();

    std::string targets = "[";
    for (const std::string& target : options.targets) targets += (targets.size() > 1 ? "," : "") + jsonString(target);
    JsonObject start;
    start.num("port", options.port).str("sender", options.sender).raw("targets", targets + "]").raw("beginStrings", "[\"FIX.4.4\",\"FIX.4.2\",\"FIXT.1.1\"]");
    start.boolean("credentialsRequired", !options.username.empty() || !options.password.empty());
    start.str("store", options.store).num("fillEvery", options.fillEvery);
    emit("start", start);

    auto nextTick = std::chrono::steady_clock::now();
    while (stopSignal == 0) {
      if (!options.busyPoll) {
        application.tick();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      acceptor->poll(0.0);
      if (std::chrono::steady_clock::now() >= nextTick) {
        application.tick();
        nextTick += std::chrono::milliseconds(50);
      }
    }
    acceptor->stop();
    JsonObject end;
    end.str("stoppedBy", "signal").num("orders", application.orders()).boolean("busyPoll", options.busyPoll).raw("appToAckWrittenUs", application.ackTimesJson());
    emit("end", end);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fix-quickfix-acceptor: %s\n", e.what());
    return 1;
  }
}
