// Prints Flyway's checksum of each file given: CRC32 over the UTF-8 bytes of every line as
// BufferedReader.readLine returns it, with a leading BOM removed from the first line, as a signed int.
// This mirrors Flyway 10's ChecksumCalculator; it produced tests/data/checksum/vectors.tsv:
//   javac -d /tmp FlywayChecksum.java && cd ../../tests/data/checksum && java -cp /tmp FlywayChecksum *.txt
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;

public class FlywayChecksum {
    public static void main(String[] args) throws Exception {
        for (String name : args) {
            CRC32 crc = new CRC32();
            try (BufferedReader r = new BufferedReader(
                    new InputStreamReader(new FileInputStream(name), StandardCharsets.UTF_8), 4096)) {
                String line = r.readLine();
                if (line != null) {
                    if (!line.isEmpty() && line.charAt(0) == '\uFEFF') {
                        line = line.substring(1);
                    }
                    do {
                        crc.update(line.getBytes(StandardCharsets.UTF_8));
                    } while ((line = r.readLine()) != null);
                }
            }
            System.out.println(name + "\t" + (int) crc.getValue());
        }
    }
}
