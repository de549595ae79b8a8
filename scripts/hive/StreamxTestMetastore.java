// Test-only launcher for the Apache Hive 2.3 metastore (jars from the pyspark PyPI package).
//
// Hive 2.3's own main (HiveMetaStore -p PORT) binds every interface. This launcher serves the
// same handler (HiveMetaStore.newRetryingHMSHandler, configured by hive-site.xml on the
// classpath) through a TThreadPoolServer bound to 127.0.0.1:PORT only, with the wire format of a
// default Hive metastore: plain (unframed) socket transport, binary protocol, no SASL.
//
// Usage: java -cp <conf dir>:<classes>:<pyspark jars>/* streamx.hive.StreamxTestMetastore PORT
package streamx.hive;

import java.net.InetSocketAddress;
import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.metastore.HiveMetaStore;
import org.apache.hadoop.hive.metastore.api.ThriftHiveMetastore;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.server.TServer;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.transport.TServerSocket;
import org.apache.thrift.transport.TTransportFactory;

public final class StreamxTestMetastore {
  private StreamxTestMetastore() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: StreamxTestMetastore PORT");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]);
    HiveConf conf = new HiveConf(HiveMetaStore.HMSHandler.class);
    // Creates the Derby schema and the default database before the port opens, so "the port
    // accepts a connection" means "ready".
    ThriftHiveMetastore.Iface handler =
        HiveMetaStore.newRetryingHMSHandler("streamx-test-metastore", conf, false);
    TServerSocket socket = new TServerSocket(new InetSocketAddress("127.0.0.1", port));
    TThreadPoolServer.Args serverArgs =
        new TThreadPoolServer.Args(socket)
            .processor(new ThriftHiveMetastore.Processor<ThriftHiveMetastore.Iface>(handler))
            .protocolFactory(new TBinaryProtocol.Factory())
            .transportFactory(new TTransportFactory())
            .minWorkerThreads(2)
            .maxWorkerThreads(64);
    TServer server = new TThreadPoolServer(serverArgs);
    System.err.println("streamx-test-metastore: serving on 127.0.0.1:" + port);
    server.serve();
  }
}
